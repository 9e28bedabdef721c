package dev.outbox.spring.internal;

import dev.outbox.consumer.IdempotentConsumer;
import java.util.List;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/** UP when every {@link IdempotentConsumer} bean's poll loop is running. */
public final class ConsumersHealthIndicator extends AbstractHealthIndicator {
  private final List<IdempotentConsumer> consumers;

  public ConsumersHealthIndicator(List<IdempotentConsumer> consumers) {
    super("outbox consumer health check failed");
    this.consumers = List.copyOf(consumers);
  }

  @Override
  protected void doHealthCheck(Health.Builder builder) {
    boolean allRunning = true;
    for (IdempotentConsumer consumer : consumers) {
      boolean running = consumer.isRunning();
      allRunning &= running;
      builder.withDetail(consumer.name(), running ? "running" : "stopped");
    }
    if (allRunning) {
      builder.up();
    } else {
      builder.down();
    }
  }
}
