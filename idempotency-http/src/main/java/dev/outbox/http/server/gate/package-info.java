/**
 * The start-up gate: every mutating endpoint is covered by the {@code Idempotency-Key} filter or
 * exempted with a reason, or the application does not start ({@link
 * dev.outbox.http.server.gate.IdempotencyGate}).
 */
package dev.outbox.http.server.gate;
