package dev.outbox.relay.internal;

import dev.outbox.core.RetriableOutboxException;
import dev.outbox.relay.PublishMode;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.config.ConfigException;

/**
 * The relay's Kafka producers: the shared one, which publishes in the idempotent mode and answers
 * {@link TopicHealth}'s lookups in both modes, and in the transactional mode one per owned shard.
 */
final class RelayProducers {
    private final RelayConfig config;
    private final String prefix;
    private final Publisher shared;
    // the shared producer's view for every shard in the idempotent mode, else null
    private final ShardPublisher sharedView;
    // the transactional mode's id prefix, else null
    private final String transactionalIdPrefix;
    // the open per-shard producers in the transactional mode
    private final Set<TransactionalPublisher> transactional = ConcurrentHashMap.newKeySet();

    private RelayProducers(RelayConfig config, String prefix, Publisher shared, String transactionalIdPrefix) {
        this.config = config;
        this.prefix = prefix;
        this.shared = shared;
        this.transactionalIdPrefix = transactionalIdPrefix;
        this.sharedView = transactionalIdPrefix == null ? ShardPublisher.shared(shared) : null;
    }

    /**
     * Creates the shared producer and, in the transactional mode, checks the per-shard producers'
     * properties so that bad properties fail the start.
     *
     * @throws IllegalArgumentException when Kafka refuses the producer properties
     * @throws RetriableOutboxException when the producer could not be created, or the database name
     *     for the transactional ids could not be read
     */
    static RelayProducers open(RelayConfig config, Db db, String prefix) {
        try {
            String transactionalIdPrefix = null;
            if (config.publishMode() == PublishMode.TRANSACTIONAL) {
                transactionalIdPrefix = config.transactionalIdPrefix() != null
                        ? config.transactionalIdPrefix()
                        : "outbox-relay." + db.database() + "." + config.schema() + ".";
                // the producers are made per shard at its claim; checked here so that bad properties fail the start
                new ProducerConfig(TransactionalPublisher.properties(
                        config.producerProperties(), transactionalIdPrefix + 0, config.leaseDuration()));
            }
            // the shared producer publishes in the idempotent mode; in both modes it answers TopicHealth's lookups
            return new RelayProducers(
                    config, prefix, new Publisher(config.producerProperties(), prefix), transactionalIdPrefix);
        } catch (SQLException e) {
            throw new RetriableOutboxException(
                    prefix + " could not read the database name for the transactional ids (SQLState " + e.getSQLState()
                            + "): " + e.getMessage() + "; check the dataSource, or set transactionalIdPrefix",
                    e);
        } catch (ConfigException e) {
            throw new IllegalArgumentException(prefix + " Kafka refused producerProperties: " + e.getMessage(), e);
        } catch (KafkaException e) {
            throw new RetriableOutboxException(prefix + " " + Publisher.cannotCreate("the Kafka producer", e), e);
        }
    }

    /** @return the shared producer; {@link TopicHealth} looks topics up through it in both modes */
    Publisher shared() {
        return shared;
    }

    /** @return the transactional ids' prefix, or null in the idempotent mode */
    String transactionalIdPrefix() {
        return transactionalIdPrefix;
    }

    /** @return how the shard's batches are published: the shared producer, or a transactional producer of its own */
    ShardPublisher forShard(int shard) {
        if (sharedView != null) {
            return sharedView;
        }
        TransactionalPublisher[] self = new TransactionalPublisher[1];
        self[0] = new TransactionalPublisher(
                config.producerProperties(),
                transactionalIdPrefix + shard,
                config.leaseDuration(),
                prefix,
                () -> transactional.remove(self[0]));
        transactional.add(self[0]);
        return self[0];
    }

    /** Closes every producer at once; their unfinished sends and open transactions fail. */
    void close(Duration timeout) {
        shared.close(timeout);
        List.copyOf(transactional).forEach(TransactionalPublisher::close);
    }

    /** @return the producer's {@code max.block.ms}, Kafka's default when not given */
    static long maxBlockMs(Map<String, Object> producerProperties) {
        Object v = producerProperties.get(ProducerConfig.MAX_BLOCK_MS_CONFIG);
        try {
            return v == null ? 60_000 : Long.parseLong(String.valueOf(v).trim());
        } catch (NumberFormatException e) {
            return 60_000;
        }
    }
}
