package dev.outbox.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.Metrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.Map;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/** Bad configuration is refused at build time with a message naming the setting, the value and the fix. */
class RelayBuilderTest {
    private static final Map<String, String> KAFKA = Map.of("bootstrap.servers", "localhost:9092");

    private static Relay.Builder valid() {
        return Relay.builder().dataSource(new PGSimpleDataSource()).producerProperties(KAFKA);
    }

    @Test
    void buildsWithOnlyTheRequiredSettings() {
        try (Relay relay = valid().instanceId("r-1").build()) {
            assertThat(relay.instanceId()).isEqualTo("r-1");
            assertThat(relay.ownedShards()).isEmpty();
            assertThat(relay.isLive()).isFalse();
            assertThat(relay.isReady()).isFalse();
        }
        try (Relay relay = valid().build()) {
            assertThat(relay.instanceId()).matches(".+-\\d+-[0-9a-f]{6}");
        }
    }

    @Test
    void transactionalIdPrefixNeedsTheTransactionalMode() {
        assertThatThrownBy(() -> valid().transactionalIdPrefix("orders.").build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("transactionalIdPrefix ('orders.') is only used with publishMode(TRANSACTIONAL)");
        assertThatThrownBy(() -> valid().publishMode(PublishMode.TRANSACTIONAL)
                        .transactionalIdPrefix(" ")
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("transactionalIdPrefix must be 1 to 200 non-blank characters");
        assertThat(valid().publishMode(PublishMode.TRANSACTIONAL)
                        .transactionalIdPrefix("orders.")
                        .build())
                .isNotNull();
    }

    @Test
    void refusesBatchSizesOutOfRange() {
        for (int bad : new int[] {0, -1, 10_001}) {
            assertThatThrownBy(() -> valid().batchSize(bad).build())
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("batchSize")
                    .hasMessageContaining("got " + bad)
                    .hasMessageContaining("between 1 and 10000");
        }
        assertThat(valid().batchSize(1).build()).isNotNull();
        assertThat(valid().batchSize(10_000).build()).isNotNull();
    }

    @Test
    void theBackoffAndTheBreakerFromTwoValuesAreBoundedAsTheProcessBoundsThem() {
        assertThat(Relay.builder().backoff(Relay.Builder.MIN_BACKOFF_BASE, Relay.Builder.MAX_BACKOFF_CAP))
                .isNotNull();
        assertThatThrownBy(() -> Relay.builder().backoff(Duration.ZERO, Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("backoffBase must be between 1ms and 1m, got 0s");
        assertThatThrownBy(() -> Relay.builder().backoff(Duration.ofMillis(100), Duration.ofMinutes(11)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("backoffCap must be between 1ms and 10m, got 11m");
        assertThatThrownBy(() -> Relay.builder().backoff(Duration.ofSeconds(2), Duration.ofSeconds(1)))
                .as("a cap below the base")
                .isInstanceOf(IllegalArgumentException.class);

        assertThat(Relay.builder()
                        .circuitBreaker(
                                Relay.Builder.MAX_BREAKER_FAILURE_THRESHOLD, Relay.Builder.MIN_BREAKER_OPEN_DURATION))
                .isNotNull();
        assertThatThrownBy(() -> Relay.builder().circuitBreaker(0, Duration.ofSeconds(10)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("breakerFailureThreshold must be between 1 and 1000, got 0");
        assertThatThrownBy(() -> Relay.builder().circuitBreaker(5, Duration.ofMillis(99)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("breakerOpenDuration must be between 100ms and 1h, got 99ms");
        assertThatThrownBy(() -> Relay.builder().circuitBreaker(5, null)).isInstanceOf(NullPointerException.class);
    }

    @Test
    void refusesMaxAttemptsOutOfRange() {
        for (int bad : new int[] {0, -1, 1_001}) {
            assertThatThrownBy(() -> valid().maxAttempts(bad).build())
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("maxAttempts")
                    .hasMessageContaining("got " + bad)
                    .hasMessageContaining("between 1 and 1000");
        }
        assertThat(valid().maxAttempts(1).build()).isNotNull();
        assertThat(valid().maxAttempts(1_000).build()).isNotNull();
    }

    @Test
    void requiresADataSource() {
        assertThatThrownBy(() -> Relay.builder().producerProperties(KAFKA).build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("dataSource is required")
                .hasMessageContaining(".dataSource(");
        assertThatThrownBy(() -> Relay.builder().dataSource(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("dataSource");
    }

    @Test
    void requiresBootstrapServers() {
        assertThatThrownBy(() ->
                        Relay.builder().dataSource(new PGSimpleDataSource()).build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("producerProperties is required");
        assertThatThrownBy(() -> Relay.builder()
                        .dataSource(new PGSimpleDataSource())
                        .producerProperties(Map.of("linger.ms", "5"))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("bootstrap.servers is missing")
                .hasMessageContaining("add it to producerProperties");
    }

    @Test
    void refusesProducerSettingsThatBreakTheGuarantees() {
        assertThatThrownBy(() -> valid().producerProperties(Map.of("bootstrap.servers", "k:9092", "acks", "1"))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("acks must be all, got '1'")
                .hasMessageContaining("remove it or set it to all");
        assertThatThrownBy(() -> valid().producerProperties(
                                Map.of("bootstrap.servers", "k:9092", "enable.idempotence", false))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("enable.idempotence must be true, got 'false'");
        assertThatThrownBy(() -> valid().producerProperties(
                                Map.of("bootstrap.servers", "k:9092", "max.in.flight.requests.per.connection", "6"))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("max.in.flight.requests.per.connection must be between 1 and 5, got 6");
        assertThatThrownBy(() -> valid().producerProperties(Map.of(
                                "bootstrap.servers",
                                "k:9092",
                                "value.serializer",
                                "org.apache.kafka.common.serialization.StringSerializer"))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("value.serializer must not be set")
                .hasMessageContaining("remove it");
        assertThatThrownBy(
                        () -> valid().producerProperties(Map.of("bootstrap.servers", "k:9092", "transactional.id", "t"))
                                .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("transactional.id is not supported")
                .hasMessageContaining("publishMode(TRANSACTIONAL)");
        // the enforced values themselves, spelled either way, are accepted
        assertThat(valid().producerProperties(Map.of(
                                "bootstrap.servers",
                                "k:9092",
                                "acks",
                                "-1",
                                "enable.idempotence",
                                "TRUE",
                                "key.serializer",
                                ByteArraySerializer.class))
                        .build())
                .isNotNull();
    }

    @Test
    void refusesDurationsAndThreadCountsOutOfRange() {
        assertThatThrownBy(() -> valid().leaseDuration(Duration.ofMillis(500)).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("leaseDuration must be between 1s and 1h, got 500ms: use e.g. the default 30s");
        assertThatThrownBy(() -> valid().idlePollInterval(Duration.ZERO).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("idlePollInterval");
        assertThatThrownBy(() -> valid().shutdownTimeout(Duration.ofSeconds(-1)).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("shutdownTimeout");
        assertThatThrownBy(() -> valid().workerThreads(0).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("workerThreads must be between 1 and 256, got 0");
        assertThatThrownBy(() -> valid().instanceId(" ").build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("instanceId");
        assertThatThrownBy(() -> valid().schema("Bad-Schema").build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Bad-Schema");
    }

    @Test
    void refusesConflictingDurations() {
        assertThatThrownBy(() -> valid().leaseDuration(Duration.ofSeconds(2))
                        .idlePollInterval(Duration.ofSeconds(5))
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("idlePollInterval (5s) may not exceed leaseDuration (2s)");
    }

    /** The builder conventions (CONTRIBUTING.md): the setter refuses its own bad argument, build() what involves several. */
    @Test
    void settersRefuseTheirArgumentAtOnceAndBuildRefusesCombinations() {
        assertThatThrownBy(() -> Relay.builder().batchSize(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("batchSize must be between 1 and 10000, got 0: use e.g. the default 500");
        assertThatThrownBy(() -> Relay.builder().probeInterval(Duration.ofSeconds(2)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("probeInterval must be between 1ms and 1s, got 2s: use e.g. the default 5ms");
        assertThatThrownBy(() -> Relay.builder().leaseDuration(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("leaseDuration may not be null");
        assertThatThrownBy(() -> Relay.builder().producerProperties(Map.of("acks", "1")))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> valid().producerProperties(
                                Map.of("bootstrap.servers", "k:9092", "delivery.timeout.ms", "30000"))
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("delivery.timeout.ms (30000) may not exceed")
                .hasMessageContaining("of 30s");
        assertThat(Relay.builder().shutdownTimeout(Relay.Builder.MIN_SHUTDOWN_TIMEOUT))
                .isNotNull();
    }

    @Test
    void aRelayStartsOnceAndClosesIdempotently() {
        Relay relay = valid().build();
        relay.close();
        relay.close();
        assertThatThrownBy(relay::start)
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
    }

    /** The meter names operators alert on, as Prometheus renders them. */
    @Test
    void registersTheDocumentedPrometheusNames() {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        try (Relay relay = valid().instanceId("r-1").meterRegistry(registry).build()) {
            String scrape = registry.scrape();
            assertThat(scrape)
                    .contains(
                            "outbox_relay_published_total{relay_instance=\"r-1\"}",
                            "outbox_relay_batch_seconds_count{relay_instance=\"r-1\"}",
                            "outbox_relay_errors_total{kind=\"retriable\",relay_instance=\"r-1\"}",
                            "outbox_relay_errors_total{kind=\"non_retriable\",relay_instance=\"r-1\"}",
                            "outbox_relay_errors_total{kind=\"fenced\",relay_instance=\"r-1\"}",
                            "outbox_relay_errors_total{kind=\"database\",relay_instance=\"r-1\"}",
                            "outbox_relay_parked_total{relay_instance=\"r-1\"}",
                            "outbox_relay_parked_rows{relay_instance=\"r-1\"}",
                            "outbox_relay_owned_shards{relay_instance=\"r-1\"}",
                            "outbox_relay_breaker_state{relay_instance=\"r-1\"}",
                            "outbox_relay_held_overflow_shards{relay_instance=\"r-1\"}",
                            "outbox_relay_backoff_seconds_count{relay_instance=\"r-1\"}");
        }
    }

    /** Builder rule: every component defaults to the global registry; relays in it keep apart. */
    @Test
    void defaultsToTheGlobalRegistryWithOneSetOfMetersPerRelay() {
        String a = "meters-a-" + System.nanoTime();
        String b = "meters-b-" + System.nanoTime();
        try (Relay first = valid().instanceId(a).build();
                Relay second = valid().instanceId(b).build()) {
            for (String id : new String[] {a, b}) {
                assertThat(Metrics.globalRegistry
                                .find("outbox.relay.owned.shards")
                                .tag("relay.instance", id)
                                .gauge())
                        .as("gauge of relay %s", id)
                        .isNotNull();
                assertThat(Metrics.globalRegistry
                                .find("outbox.relay.published")
                                .tag("relay.instance", id)
                                .counter())
                        .isNotNull();
            }
        }
        assertThat(Metrics.globalRegistry
                        .find("outbox.relay.owned.shards")
                        .tag("relay.instance", a)
                        .gauge())
                .as("a closed relay removes its gauges")
                .isNull();
    }
}
