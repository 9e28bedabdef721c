package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.core.Outbox;
import dev.outbox.core.retry.Backoff;
import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.relay.ParkPolicy;
import dev.outbox.relay.PublishMode;
import dev.outbox.relay.Relay;
import dev.outbox.relay.internal.RelayConfig;
import dev.outbox.spring.internal.OutboxMigrationsInitializer;
import java.beans.PropertyDescriptor;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.springframework.beans.BeanUtils;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.test.context.runner.WebApplicationContextRunner;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.jdbc.datasource.DriverManagerDataSource;
import org.springframework.test.util.ReflectionTestUtils;
import org.springframework.transaction.PlatformTransactionManager;

/**
 * The auto-configuration's conditions and settings, without a database: every context here has
 * the migrations turned off and a data source that is never connected to.
 */
class OutboxAutoConfigurationTest {
    private static final DataSource NEVER_CONNECTED = new DriverManagerDataSource("jdbc:postgresql://127.0.0.1:1/none");

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
            .withBean(DataSource.class, () -> NEVER_CONNECTED)
            .withPropertyValues("outbox.migrations.enabled=false");

    private final WebApplicationContextRunner web = new WebApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
            .withBean(DataSource.class, () -> NEVER_CONNECTED)
            .withBean(PlatformTransactionManager.class, () -> new DataSourceTransactionManager(NEVER_CONNECTED))
            .withPropertyValues("outbox.migrations.enabled=false");

    @Test
    void givesTheOutboxAndTheDedupClaimAndSkipsTheMigrationsWhenTold() {
        runner.withPropertyValues("outbox.schema=shop_outbox", "outbox.shards=16")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(context)
                            .hasSingleBean(OutboxTemplate.class)
                            .hasSingleBean(ProcessedMessagesTemplate.class);
                    assertThat(context).doesNotHaveBean(OutboxMigrationsInitializer.class);
                    assertThat(context).doesNotHaveBean(IdempotencyFilter.class);
                    Outbox outbox = context.getBean(Outbox.class);
                    assertThat(outbox.schema()).isEqualTo("shop_outbox");
                    assertThat(outbox.shardCount()).isEqualTo(16);
                });
    }

    @Test
    void backsOffWithoutADataSource() {
        new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(OutboxAutoConfiguration.class))
                .run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(OutboxTemplate.class));
    }

    @Test
    void registersTheFilterForTheConfiguredPathsOnly() {
        web.withPropertyValues("outbox.idempotency.paths=/orders,/payments/*").run(context -> {
            assertThat(context).hasNotFailed().hasSingleBean(IdempotencyFilter.class);
            FilterRegistrationBean<?> registration =
                    context.getBean(OutboxAutoConfiguration.FILTER_REGISTRATION_BEAN, FilterRegistrationBean.class);
            assertThat(registration.getUrlPatterns()).containsExactly("/orders", "/payments/*");
        });
        web.run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(IdempotencyFilter.class));
    }

    @Test
    void anEmbeddedRelayWithoutKafkaNamesTheSettings() {
        runner.withPropertyValues("outbox.relay.enabled=true").run(context -> {
            assertThat(context).hasFailed();
            assertThat(context.getStartupFailure())
                    .rootCause()
                    .hasMessageContaining("outbox.relay.bootstrap-servers")
                    .hasMessageContaining("spring.kafka.bootstrap-servers");
        });
    }

    @Test
    void theEmbeddedRelaysDefaultsAreTheRelays() {
        OutboxProperties.Relay relay = new OutboxProperties().getRelay();
        assertThat(relay.getBatchSize()).isEqualTo(Relay.Builder.DEFAULT_BATCH_SIZE);
        assertThat(relay.getBatchBytes().toBytes()).isEqualTo(Relay.Builder.DEFAULT_BATCH_BYTES);
        assertThat(relay.getLeaseDuration()).isEqualTo(Relay.Builder.DEFAULT_LEASE_DURATION);
        assertThat(relay.getIdlePollInterval()).isEqualTo(Relay.Builder.DEFAULT_IDLE_POLL_INTERVAL);
        assertThat(relay.getProbeInterval()).isEqualTo(Relay.Builder.DEFAULT_PROBE_INTERVAL);
        assertThat(relay.getProbeIntervalUnderLoad()).isEqualTo(Relay.Builder.DEFAULT_PROBE_INTERVAL_UNDER_LOAD);
        assertThat(relay.getWorkerThreads()).isEqualTo(Relay.Builder.DEFAULT_WORKER_THREADS);
        assertThat(relay.getVacuumAfterRows()).isEqualTo(Relay.Builder.DEFAULT_VACUUM_AFTER_ROWS);
        assertThat(relay.getMaxAttempts()).isEqualTo(Relay.Builder.DEFAULT_MAX_ATTEMPTS);
        assertThat(relay.getParkPolicy().name()).isEqualTo(Relay.Builder.DEFAULT_PARK_POLICY.name());
        assertThat(relay.getPublishMode().name()).isEqualTo(Relay.Builder.DEFAULT_PUBLISH_MODE.name());
        assertThat(relay.getTransactionalIdPrefix()).isNull();
        assertThat(relay.getShutdownTimeout()).isEqualTo(Relay.Builder.DEFAULT_SHUTDOWN_TIMEOUT);
        assertThat(relay.getBackoffBase()).isEqualTo(Relay.Builder.DEFAULT_BACKOFF.base());
        assertThat(relay.getBackoffCap()).isEqualTo(Relay.Builder.DEFAULT_BACKOFF.cap());
        assertThat(relay.getBreakerFailureThreshold()).isEqualTo(Relay.Builder.DEFAULT_BREAKER_FAILURE_THRESHOLD);
        assertThat(relay.getBreakerOpenDuration()).isEqualTo(Relay.Builder.DEFAULT_BREAKER_OPEN_DURATION);
        assertThat(relay.getInstanceId()).isNull();
        assertThat(relay.getBootstrapServers()).isNull();
        assertThat(relay.getProducer()).isEmpty();
    }

    @Test
    void theParkPolicyAndPublishModeHaveTheRelaysConstants() {
        assertThat(Arrays.stream(OutboxProperties.Relay.ParkPolicy.values()).map(Enum::name))
                .containsExactly(
                        Arrays.stream(ParkPolicy.values()).map(Enum::name).toArray(String[]::new));
        assertThat(Arrays.stream(OutboxProperties.Relay.PublishMode.values()).map(Enum::name))
                .containsExactly(
                        Arrays.stream(PublishMode.values()).map(Enum::name).toArray(String[]::new));
    }

    @Test
    void everyBuilderSettingHasAProperty() {
        Set<String> relayProperties = writableProperties(OutboxProperties.Relay.class);
        Set<String> outboxProperties = writableProperties(OutboxProperties.class);
        Set<String> setters = Arrays.stream(Relay.Builder.class.getMethods())
                .filter(m -> !Modifier.isStatic(m.getModifiers()))
                .filter(m -> m.getReturnType() == Relay.Builder.class && m.getParameterCount() == 1)
                .map(Method::getName)
                .collect(Collectors.toCollection(TreeSet::new));
        assertThat(setters).as("the builder's setters").contains("batchSize", "maxAttempts", "vacuumAfterRows");
        // the application's own objects, and LISTEN, which needs a data source of session connections
        setters.removeAll(Set.of("dataSource", "meterRegistry", "producerProperties", "listenDataSource"));
        List<String> missing = new ArrayList<>();
        for (String setter : setters) {
            List<String> expected = switch (setter) {
                case "backoff" -> List.of("backoffBase", "backoffCap");
                case "circuitBreaker" -> List.of("breakerFailureThreshold", "breakerOpenDuration");
                default -> List.of(setter);
            };
            for (String property : expected) {
                // the schema is the outbox's, outbox.schema
                Set<String> owner = setter.equals("schema") ? outboxProperties : relayProperties;
                if (!owner.contains(property)) {
                    missing.add(setter + " -> " + property);
                }
            }
        }
        assertThat(missing)
                .as("Relay.Builder setters without a property of OutboxProperties.Relay (outbox.relay.*)")
                .isEmpty();
    }

    private static Set<String> writableProperties(Class<?> type) {
        return Arrays.stream(BeanUtils.getPropertyDescriptors(type))
                .filter(d -> d.getWriteMethod() != null && d.getReadMethod() != null)
                .map(PropertyDescriptor::getName)
                .collect(Collectors.toCollection(TreeSet::new));
    }

    @Test
    void everySettingReachesTheRelay() {
        RelayConfig config = builtRelay(
                "outbox.schema=shop_outbox",
                "outbox.relay.instance-id=relay-all-settings",
                "outbox.relay.batch-size=200",
                "outbox.relay.batch-bytes=2MB",
                "outbox.relay.lease-duration=20s",
                "outbox.relay.idle-poll-interval=500ms",
                "outbox.relay.probe-interval=7ms",
                "outbox.relay.probe-interval-under-load=20ms",
                "outbox.relay.worker-threads=3",
                "outbox.relay.vacuum-after-rows=0",
                "outbox.relay.max-attempts=25",
                "outbox.relay.park-policy=hold-key",
                "outbox.relay.publish-mode=transactional",
                "outbox.relay.transactional-id-prefix=shop.",
                "outbox.relay.shutdown-timeout=5s",
                "outbox.relay.backoff-base=50ms",
                "outbox.relay.backoff-cap=2s",
                "outbox.relay.breaker-failure-threshold=7",
                "outbox.relay.breaker-open-duration=3s",
                "outbox.relay.producer.compression.type=zstd");
        assertThat(config.schema()).isEqualTo("shop_outbox");
        assertThat(config.instanceId()).isEqualTo("relay-all-settings");
        assertThat(config.batchSize()).isEqualTo(200);
        assertThat(config.batchBytes()).isEqualTo(2 << 20);
        assertThat(config.leaseDuration()).isEqualTo(Duration.ofSeconds(20));
        assertThat(config.idlePollInterval()).isEqualTo(Duration.ofMillis(500));
        assertThat(config.probeInterval()).isEqualTo(Duration.ofMillis(7));
        assertThat(config.probeIntervalUnderLoad()).isEqualTo(Duration.ofMillis(20));
        assertThat(config.workerThreads()).isEqualTo(3);
        assertThat(config.vacuumAfterRows()).isZero();
        assertThat(config.maxAttempts()).isEqualTo(25);
        assertThat(config.parkPolicy()).isEqualTo(ParkPolicy.HOLD_KEY);
        assertThat(config.publishMode()).isEqualTo(PublishMode.TRANSACTIONAL);
        assertThat(config.transactionalIdPrefix()).isEqualTo("shop.");
        assertThat(config.shutdownTimeout()).isEqualTo(Duration.ofSeconds(5));
        assertThat(config.backoff()).isEqualTo(Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(2)));
        assertThat(config.circuitBreaker().getSlidingWindowSize()).isEqualTo(7);
        assertThat(config.circuitBreaker().getMinimumNumberOfCalls()).isEqualTo(7);
        assertThat(config.circuitBreaker().getWaitIntervalFunctionInOpenState().apply(1))
                .isEqualTo(3_000L);
        assertThat(config.producerProperties())
                .containsEntry("bootstrap.servers", "127.0.0.1:1")
                .containsEntry("compression.type", "zstd");
    }

    @Test
    void theBreakerAndBackoffDefaultsAreTheBuilders() {
        RelayConfig config = builtRelay("outbox.relay.instance-id=relay-defaults");
        assertThat(config.backoff()).isEqualTo(Relay.Builder.DEFAULT_BACKOFF);
        assertThat(config.circuitBreaker().getSlidingWindowSize())
                .isEqualTo(Relay.Builder.DEFAULT_BREAKER_FAILURE_THRESHOLD);
        assertThat(config.circuitBreaker().getWaitIntervalFunctionInOpenState().apply(1))
                .isEqualTo(Relay.Builder.DEFAULT_BREAKER_OPEN_DURATION.toMillis());
        assertThat(config.parkPolicy()).isEqualTo(Relay.Builder.DEFAULT_PARK_POLICY);
        assertThat(config.publishMode()).isEqualTo(Relay.Builder.DEFAULT_PUBLISH_MODE);
        assertThat(config.transactionalIdPrefix()).isNull();
        assertThat(config.shutdownTimeout()).isEqualTo(Relay.Builder.DEFAULT_SHUTDOWN_TIMEOUT);
        assertThat(config.maxAttempts()).isEqualTo(Relay.Builder.DEFAULT_MAX_ATTEMPTS);
    }

    @Test
    void anEmptyInstanceIdOrTransactionalIdPrefixMeansTheDefault() {
        // as ${POD_NAME:} gives when POD_NAME is not set
        RelayConfig config = builtRelay("outbox.relay.instance-id=", "outbox.relay.transactional-id-prefix=");
        assertThat(config.instanceId()).isNotBlank();
        assertThat(config.transactionalIdPrefix()).isNull();
    }

    @Test
    void aRefusedSettingNamesThePropertyAndTheValueGiven() {
        assertThat(refusal("outbox.relay.batch-size=0"))
                .startsWith("outbox.relay.batch-size=0: batchSize must be between 1 and 10000, got 0");
        assertThat(refusal("outbox.relay.max-attempts=0"))
                .startsWith("outbox.relay.max-attempts=0: maxAttempts must be between 1 and 1000, got 0");
        assertThat(refusal("outbox.relay.worker-threads=300"))
                .startsWith("outbox.relay.worker-threads=300: workerThreads must be between 1 and 256");
        assertThat(refusal("outbox.relay.vacuum-after-rows=-1"))
                .startsWith("outbox.relay.vacuum-after-rows=-1: vacuumAfterRows must be between 0 and 100000000");
        assertThat(refusal("outbox.relay.shutdown-timeout=11m"))
                .startsWith("outbox.relay.shutdown-timeout=11m: shutdownTimeout must be between 0s and 10m, got 11m");
        assertThat(refusal("outbox.relay.lease-duration=500ms"))
                .startsWith("outbox.relay.lease-duration=500ms: leaseDuration must be between 1s and 1h");
        assertThat(refusal("outbox.relay.idle-poll-interval=PT0.005S"))
                .startsWith("outbox.relay.idle-poll-interval=PT0.005S: idlePollInterval must be between 10ms and 1m");
        assertThat(refusal("outbox.relay.instance-id=" + "r".repeat(201)))
                .startsWith("outbox.relay.instance-id=" + "r".repeat(201) + ": instanceId must be 1 to 200");
        assertThat(refusal(
                        "outbox.relay.publish-mode=transactional",
                        "outbox.relay.transactional-id-prefix=" + "x".repeat(201)))
                .startsWith("outbox.relay.transactional-id-prefix=" + "x".repeat(201)
                        + ": transactionalIdPrefix must be 1 to 200");
        assertThat(refusal("outbox.relay.backoff-base=0ms"))
                .startsWith("outbox.relay.backoff-base=0ms: backoffBase must be between 1ms and 1m, got 0s");
        assertThat(refusal("outbox.relay.backoff-cap=11m"))
                .startsWith("outbox.relay.backoff-cap=11m: backoffCap must be between 1ms and 10m, got 11m");
        assertThat(refusal("outbox.relay.backoff-base=1s", "outbox.relay.backoff-cap=500ms"))
                .startsWith("outbox.relay.backoff-cap=500ms (with outbox.relay.backoff-base=1s): backoff cap (500ms)"
                        + " must be at least base (1s)");
        assertThat(refusal("outbox.relay.breaker-failure-threshold=0"))
                .startsWith("outbox.relay.breaker-failure-threshold=0: breakerFailureThreshold must be between 1"
                        + " and 1000, got 0");
        assertThat(refusal("outbox.relay.breaker-open-duration=50ms"))
                .startsWith("outbox.relay.breaker-open-duration=50ms: breakerOpenDuration must be between 100ms"
                        + " and 1h, got 50ms");
    }

    @Test
    void twoSettingsThatConflictAreNamedByTheirProperties() {
        assertThat(refusal("outbox.relay.idle-poll-interval=40s"))
                .startsWith("outbox.relay.idle-poll-interval=40s may not exceed outbox.relay.lease-duration=30s");
        assertThat(refusal("outbox.relay.transactional-id-prefix=shop."))
                .startsWith("outbox.relay.transactional-id-prefix=shop. is only used with"
                        + " outbox.relay.publish-mode=transactional");
    }

    @Test
    void batchBytesBeyondTheIntRangeAreRefusedNotClamped() {
        assertThat(refusal("outbox.relay.batch-bytes=3GB"))
                .startsWith("outbox.relay.batch-bytes=3GB: batchBytes must be between 1024 and 1073741824, got"
                        + " 3221225472")
                .doesNotContain(String.valueOf(Integer.MAX_VALUE));
        assertThat(refusal("outbox.relay.batch-bytes=1536MB"))
                .startsWith("outbox.relay.batch-bytes=1536MB: batchBytes must be between 1024 and 1073741824, got"
                        + " 1610612736");
    }

    @Test
    void producerPropertiesAreCheckedAsTheRelayProcessChecksThem() {
        assertThat(refusal("outbox.relay.producer.linger=5"))
                .startsWith("outbox.relay.producer.linger=5: unknown Kafka producer property linger")
                .contains("did you mean linger.ms?");
        assertThat(refusal("outbox.relay.producer.group.id=orders"))
                .startsWith("outbox.relay.producer.group.id=orders: unknown Kafka producer property group.id");
        assertThat(refusal("outbox.relay.producer.bootstrap.servers=kafka:9092"))
                .startsWith("outbox.relay.producer.bootstrap.servers=kafka:9092:")
                .contains("outbox.relay.bootstrap-servers");
        assertThat(refusal("outbox.relay.producer.ssl.keystore.pasword=s3cret"))
                .startsWith("outbox.relay.producer.ssl.keystore.pasword=[hidden]: unknown Kafka producer property")
                .contains("did you mean ssl.keystore.password?")
                .doesNotContain("s3cret");
        assertThat(refusal("outbox.relay.producer.linger.ms=soon"))
                .startsWith("outbox.relay.producer.linger.ms=soon: Invalid value soon for configuration linger.ms");
        // what the builder itself refuses stays refused
        assertThat(refusal("outbox.relay.producer.acks=1"))
                .startsWith("outbox.relay.producer.acks=1: producer property acks must be all");
        assertThat(refusal("outbox.relay.producer.enable.idempotence=false"))
                .startsWith("outbox.relay.producer.enable.idempotence=false: producer property enable.idempotence"
                        + " must be true");
        assertThat(refusal("outbox.relay.producer.transactional.id=shop"))
                .startsWith("outbox.relay.producer.transactional.id=shop: producer property transactional.id is not"
                        + " supported");
        assertThat(refusal("outbox.relay.producer.delivery.timeout.ms=60000"))
                .startsWith("outbox.relay.producer.delivery.timeout.ms=60000: producer property delivery.timeout.ms"
                        + " (60000) may not exceed");
    }

    @Test
    void springKafkaBootstrapServersMayBeAList() {
        RelayConfig config = builtRelay(
                runner,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-list",
                "spring.kafka.bootstrap-servers[0]=h1:9092",
                "spring.kafka.bootstrap-servers[1]=h2:9092");
        assertThat(config.producerProperties()).containsEntry("bootstrap.servers", "h1:9092,h2:9092");
        config = builtRelay(
                runner,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-text",
                "spring.kafka.bootstrap-servers=h1:9092,h2:9092");
        assertThat(config.producerProperties()).containsEntry("bootstrap.servers", "h1:9092,h2:9092");
        config = builtRelay(
                runner,
                "outbox.relay.enabled=true",
                "outbox.relay.instance-id=relay-own",
                "outbox.relay.bootstrap-servers=k1:9092",
                "spring.kafka.bootstrap-servers=h1:9092");
        assertThat(config.producerProperties()).containsEntry("bootstrap.servers", "k1:9092");
    }

    /**
     * @return the configuration of the relay the starter built from these settings (with the relay
     *     enabled and Kafka given); the context then fails to start it, as nothing answers at the data
     *     source
     */
    private RelayConfig builtRelay(String... properties) {
        return builtRelay(
                runner.withPropertyValues("outbox.relay.enabled=true", "outbox.relay.bootstrap-servers=127.0.0.1:1"),
                properties);
    }

    private static RelayConfig builtRelay(ApplicationContextRunner runner, String... properties) {
        AtomicReference<Relay> built = new AtomicReference<>();
        runner.withPropertyValues(properties)
                .withBean("relayCapture", BeanPostProcessor.class, () -> new BeanPostProcessor() {
                    @Override
                    public Object postProcessAfterInitialization(Object bean, String name) {
                        if (bean instanceof Relay relay) {
                            built.set(relay);
                        }
                        return bean;
                    }
                })
                .run(context -> {
                    if (context.getStartupFailure() != null) {
                        assertThat(built.get())
                                .as("the relay was built; the start failed with %s", context.getStartupFailure())
                                .isNotNull();
                    }
                });
        assertThat(built.get()).as("the relay was built").isNotNull();
        return (RelayConfig) ReflectionTestUtils.getField(built.get(), "config");
    }

    /** @return the message of the failure that stopped the start with the relay enabled, Kafka given, and these settings */
    private String refusal(String... properties) {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        runner.withPropertyValues("outbox.relay.enabled=true", "outbox.relay.bootstrap-servers=127.0.0.1:1")
                .withPropertyValues(properties)
                .run(context -> {
                    assertThat(context).hasFailed();
                    failure.set(context.getStartupFailure());
                });
        Throwable root = failure.get();
        while (root.getCause() != null) {
            root = root.getCause();
        }
        return root.getMessage();
    }

    @Test
    void theEmbeddedRelayTakesItsProbeAndBatchSettings() {
        // the builder refuses what is out of range, so a refusal shows the setting reached it
        assertThat(refusal("outbox.relay.probe-interval-under-load=2s"))
                .startsWith("outbox.relay.probe-interval-under-load=2s: probeIntervalUnderLoad must be between 1ms and"
                        + " 1s, got 2s");
        assertThat(refusal("outbox.relay.probe-interval=0ms"))
                .startsWith("outbox.relay.probe-interval=0ms: probeInterval must be between 1ms and 1s, got 0s");
        assertThat(refusal("outbox.relay.batch-bytes=2GB"))
                .startsWith("outbox.relay.batch-bytes=2GB: batchBytes must be between 1024 and 1073741824, got"
                        + " 2147483648");
        assertThat(refusal("outbox.relay.batch-bytes=512B"))
                .startsWith("outbox.relay.batch-bytes=512B: batchBytes must be between 1024 and 1073741824, got 512");
    }

    @Test
    void describesEverySettingForIdeCompletion() throws Exception {
        String metadata;
        try (InputStream in = getClass().getResourceAsStream("/META-INF/spring-configuration-metadata.json")) {
            assertThat(in).as("the configuration processor ran").isNotNull();
            metadata = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertThat(metadata)
                .contains(
                        "\"outbox.idempotency.paths\"",
                        "\"outbox.migrations.enabled\"",
                        "\"outbox.relay.enabled\"",
                        "\"outbox.relay.max-attempts\"",
                        "\"outbox.relay.park-policy\"",
                        "\"outbox.relay.publish-mode\"",
                        "\"outbox.relay.transactional-id-prefix\"",
                        "\"outbox.relay.shutdown-timeout\"",
                        "\"outbox.relay.backoff-base\"",
                        "\"outbox.relay.backoff-cap\"",
                        "\"outbox.relay.breaker-failure-threshold\"",
                        "\"outbox.relay.breaker-open-duration\"",
                        "\"outbox.schema\"",
                        "\"defaultValue\": 64",
                        "\"defaultValue\": \"park-and-continue\"");
    }
}
