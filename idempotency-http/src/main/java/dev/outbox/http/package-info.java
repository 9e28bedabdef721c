/** HTTP Idempotency-Key support: the server-side key store and filter, and the retrying client. */
package dev.outbox.http;
