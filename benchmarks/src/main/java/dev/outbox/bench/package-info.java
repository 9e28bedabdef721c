/** Load generators for the relay, the consumer and the HTTP client, with the reports they write. */
package dev.outbox.bench;
