/** Throughput of the idempotent consumer against a plain consumer loop doing the same insert. */
package dev.outbox.bench.consumer;
