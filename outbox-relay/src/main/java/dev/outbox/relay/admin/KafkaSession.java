package dev.outbox.relay.admin;

import java.time.Duration;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;

/**
 * The Kafka admin client of one doctor run, shared by its checks: created when a check first asks for
 * it, closed at the end of the run. Used by one thread.
 */
final class KafkaSession implements AutoCloseable {
    private final Map<String, Object> properties;
    private Admin admin;

    /** @param properties the admin client's properties ({@link TopicRetentionCheck#adminProperties}) */
    KafkaSession(Map<String, Object> properties) {
        this.properties = properties;
    }

    /**
     * @return the run's admin client, created on the first call
     * @throws org.apache.kafka.common.KafkaException when the properties cannot make a client; a later
     *     call tries again
     */
    Admin admin() {
        if (admin == null) {
            admin = Admin.create(properties);
        }
        return admin;
    }

    @Override
    public void close() {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
            admin = null;
        }
    }
}
