/**
 * Spring Boot integration: {@link dev.outbox.spring.OutboxAutoConfiguration} (what it configures),
 * {@link dev.outbox.spring.OutboxTemplate} (appends in the Spring-managed transaction), {@link
 * dev.outbox.spring.ProcessedMessagesTemplate} (the dedup claim for {@code @KafkaListener} methods)
 * and {@link dev.outbox.spring.OutboxProperties} (the {@code outbox.*} settings).
 */
package dev.outbox.spring;
