/** The idempotent consumer: records each message id in the business transaction so every effect happens once. */
package dev.outbox.consumer;
