/** The relay: leases outbox shards, publishes their rows to Kafka at least once, and deletes them after the acks. */
package dev.outbox.relay;
