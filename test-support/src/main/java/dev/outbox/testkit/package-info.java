/**
 * Real PostgreSQL and a real Kafka broker for integration tests, the benchmarks and the demo.
 *
 * <p>Annotate a test class with {@code @ExtendWith(RealServices.class)} and declare {@link
 * dev.outbox.testkit.TestDatabase} or {@link dev.outbox.testkit.TestKafka} parameters. Each test
 * class gets a fresh database copied from a migrated template; the Kafka broker is shared by every
 * test of the JVM.
 */
package dev.outbox.testkit;
