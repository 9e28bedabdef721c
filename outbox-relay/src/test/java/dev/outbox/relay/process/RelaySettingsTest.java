package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.relay.ParkPolicy;
import dev.outbox.relay.PublishMode;
import java.time.Duration;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class RelaySettingsTest {
    private static final Map<String, String> REQUIRED =
            Map.of("jdbc-url", "jdbc:postgresql://db/orders", "bootstrap-servers", "kafka:9092");

    private static RelaySettings.Values resolve(
            Map<String, String> flags, Map<String, String> env, Map<String, String> file) {
        Map<String, String> f = new LinkedHashMap<>(REQUIRED);
        f.putAll(flags);
        return RelaySettings.resolve(f, env, file, "relay.properties", true);
    }

    @Test
    void defaultsApplyWhenNothingIsGiven() {
        RelaySettings.Values v = resolve(Map.of(), Map.of(), Map.of());
        assertThat(v.integer(RelaySettings.BATCH_SIZE)).isEqualTo(500);
        assertThat(v.duration(RelaySettings.LEASE_DURATION)).isEqualTo(Duration.ofSeconds(30));
        assertThat(v.duration(RelaySettings.BACKOFF_BASE)).isEqualTo(Duration.ofMillis(100));
        assertThat(v.string(RelaySettings.SCHEMA)).isEqualTo("outbox");
        assertThat(v.integer(RelaySettings.HTTP_PORT)).isEqualTo(8080);
        assertThat(v.parkPolicy()).isEqualTo(ParkPolicy.PARK_AND_CONTINUE);
        assertThat(v.publishMode()).isEqualTo(PublishMode.IDEMPOTENT);
        assertThat(v.string(RelaySettings.TRANSACTIONAL_ID_PREFIX)).isEmpty();
        assertThat(v.producerProperties()).isEmpty();
    }

    @Test
    void flagsBeatEnvironmentBeatsFileBeatsDefault() {
        Map<String, String> file = Map.of(
                "relay.batch.size",
                "100",
                "relay.lease.duration",
                "10s",
                "relay.schema",
                "from_file",
                "relay.http.port",
                "9000");
        Map<String, String> env = Map.of("OUTBOX_RELAY_BATCH_SIZE", "200", "OUTBOX_RELAY_LEASE_DURATION", "20s");
        Map<String, String> flags = Map.of("batch-size", "300");
        RelaySettings.Values v = resolve(flags, env, file);
        assertThat(v.integer(RelaySettings.BATCH_SIZE)).isEqualTo(300);
        assertThat(v.duration(RelaySettings.LEASE_DURATION)).isEqualTo(Duration.ofSeconds(20));
        assertThat(v.string(RelaySettings.SCHEMA)).isEqualTo("from_file");
        assertThat(v.integer(RelaySettings.HTTP_PORT)).isEqualTo(9000);
        assertThat(v.duration(RelaySettings.IDLE_POLL_INTERVAL)).isEqualTo(Duration.ofSeconds(1));
    }

    /**
     * A value means the same whatever its source: a flag's leading or trailing whitespace (a stray space in
     * a script) is dropped, as the environment's and the file's are. Before, {@code --db-user='relay '}
     * named another role, and {@code --jdbc-url}, {@code --schema}, {@code --instance-id} or {@code
     * --kafka.acks} with a space were refused, while the same values in the environment or the file were
     * taken.
     */
    @Test
    void flagValuesAreTrimmedLikeTheEnvironmentsAndTheFilesValues() {
        Map<String, String> padded = new LinkedHashMap<>();
        padded.put("jdbc-url", " jdbc:postgresql://db/orders ");
        padded.put("bootstrap-servers", "kafka:9092 ");
        padded.put("db-user", "relay ");
        padded.put("db-password", " pw ");
        padded.put("schema", " billing");
        padded.put("instance-id", "relay-1 ");
        padded.put("lease-duration", " 20s ");
        padded.put("kafka.acks", " all");
        padded.put("kafka.linger.ms", "5 ");
        Map<String, String> env = new LinkedHashMap<>();
        Map<String, String> file = new LinkedHashMap<>();
        padded.forEach((name, value) -> {
            if (name.startsWith(RelaySettings.KAFKA_PREFIX)) {
                env.put(
                        RelaySettings.KAFKA_ENV_PREFIX
                                + name.substring(RelaySettings.KAFKA_PREFIX.length())
                                        .toUpperCase(Locale.ROOT)
                                        .replace('.', '_'),
                        value);
                file.put(name, value);
            } else {
                Setting<?> s = RelaySettings.byName(name).orElseThrow();
                env.put(s.envVar(), value);
                file.put(s.fileKey(), value);
            }
        });

        RelaySettings.Values fromFlags = RelaySettings.resolve(padded, Map.of(), Map.of(), "relay.properties", true);
        RelaySettings.Values fromEnv = RelaySettings.resolve(Map.of(), env, Map.of(), "relay.properties", true);
        RelaySettings.Values fromFile = RelaySettings.resolve(Map.of(), Map.of(), file, "relay.properties", true);

        assertThat(fromFlags.string(RelaySettings.JDBC_URL)).isEqualTo("jdbc:postgresql://db/orders");
        assertThat(fromFlags.string(RelaySettings.DB_USER)).isEqualTo("relay");
        assertThat(fromFlags.string(RelaySettings.DB_PASSWORD)).isEqualTo("pw");
        assertThat(fromFlags.string(RelaySettings.SCHEMA)).isEqualTo("billing");
        assertThat(fromFlags.producerProperties())
                .containsExactlyInAnyOrderEntriesOf(Map.of("acks", "all", "linger.ms", "5"));
        for (Setting<?> s : RelaySettings.ALL) {
            assertThat(fromFlags.get(s)).as(s.name()).isEqualTo(fromEnv.get(s)).isEqualTo(fromFile.get(s));
        }
        assertThat(fromFlags.producerProperties())
                .isEqualTo(fromEnv.producerProperties())
                .isEqualTo(fromFile.producerProperties());
    }

    @Test
    void kafkaPropertiesPassThroughFromEveryStyleWithTheSamePrecedence() {
        RelaySettings.Values v = resolve(
                Map.of("kafka.linger.ms", "7"),
                Map.of(
                        "OUTBOX_RELAY_KAFKA_LINGER_MS",
                        "6",
                        "OUTBOX_RELAY_KAFKA_SECURITY_PROTOCOL",
                        "SSL",
                        "OUTBOX_RELAY_KAFKA_MAX_REQUEST_SIZE",
                        "10240"),
                Map.of("kafka.linger.ms", "5", "kafka.compression.type", "zstd"));
        assertThat(v.producerProperties())
                .containsExactlyInAnyOrderEntriesOf(Map.of(
                        "linger.ms",
                        "7",
                        "security.protocol",
                        "SSL",
                        "max.request.size",
                        "10240",
                        "compression.type",
                        "zstd"));
    }

    @Test
    void aBadValueNamesTheSettingTheValueWhereItCameFromAndTheRule() {
        assertThatThrownBy(() -> resolve(Map.of("batch-size", "-5"), Map.of(), Map.of()))
                .isInstanceOf(CliException.class)
                .hasMessage(
                        "Invalid value -5 for setting batch-size (OUTBOX_RELAY_BATCH_SIZE, given by flag --batch-size): must be between 1 and 10000");
        assertThatThrownBy(() -> resolve(Map.of(), Map.of(), Map.of("relay.lease.duration", "30")))
                .hasMessageStartingWith(
                        "Invalid value 30 for setting lease-duration (OUTBOX_RELAY_LEASE_DURATION, given by relay.lease.duration in relay.properties)")
                .hasMessageContaining("with a unit, e.g. 500ms, 30s");
        assertThatThrownBy(() -> resolve(Map.of(), Map.of("OUTBOX_RELAY_PARK_POLICY", "DROP"), Map.of()))
                .hasMessageContaining("park-policy")
                .hasMessageContaining("PARK_AND_CONTINUE, HOLD_KEY");
        assertThatThrownBy(() -> resolve(Map.of("bootstrap-servers", "kafka"), Map.of(), Map.of()))
                .hasMessageContaining("bootstrap-servers")
                .hasMessageContaining("host:port");
        assertThatThrownBy(() -> resolve(Map.of("jdbc-url", "jdbc:mysql://db/x"), Map.of(), Map.of()))
                .hasMessageContaining("jdbc-url")
                .hasMessageContaining("jdbc:postgresql:");
    }

    @Test
    void secretsAreNeverShownNotEvenInErrors() {
        RelaySettings.Values v = resolve(
                Map.of("db-password", "hunter2", "kafka.sasl.jaas.config", "x required password=\"p4ss\";"),
                Map.of(),
                Map.of());
        assertThat(v.describe())
                .doesNotContain("hunter2")
                .doesNotContain("p4ss")
                .contains("db-password=****");
    }

    @Test
    void unknownSettingsAreRefusedWithTheNearestKnownName() {
        assertThatThrownBy(() -> resolve(Map.of("batchsize", "5"), Map.of(), Map.of()))
                .hasMessage(
                        "Unknown setting --batchsize (flag): did you mean --batch-size? See --help for every setting.");
        assertThatThrownBy(() -> resolve(Map.of(), Map.of("OUTBOX_RELAY_LEASE_DURATON", "5s"), Map.of()))
                .hasMessageContaining("OUTBOX_RELAY_LEASE_DURATON")
                .hasMessageContaining("did you mean OUTBOX_RELAY_LEASE_DURATION?");
        assertThatThrownBy(() -> resolve(Map.of(), Map.of(), Map.of("relay.batch.sise", "5")))
                .hasMessageContaining("relay.batch.sise in relay.properties")
                .hasMessageContaining("did you mean relay.batch.size?");
        assertThatThrownBy(() -> resolve(Map.of("kafka.linger.msx", "5"), Map.of(), Map.of()))
                .hasMessageContaining("--kafka.linger.msx")
                .hasMessageContaining("did you mean --kafka.linger.ms?");
        assertThatThrownBy(() -> resolve(Map.of(), Map.of("OUTBOX_RELAY_KAFKA_LINGER", "5"), Map.of()))
                .hasMessageContaining("OUTBOX_RELAY_KAFKA_LINGER")
                .hasMessageContaining("OUTBOX_RELAY_KAFKA_LINGER_MS");
        assertThatThrownBy(() -> resolve(Map.of(), Map.of(), Map.of("batch.size", "5")))
                .hasMessageContaining("Unknown setting batch.size");
    }

    @Test
    void otherEnvironmentVariablesAreIgnored() {
        RelaySettings.Values v = resolve(
                Map.of(), Map.of("PATH", "/bin", "OUTBOX_TEST_JDBC_URL", "x", "OUTBOX_RELAY_CONFIG", "f"), Map.of());
        assertThat(v.integer(RelaySettings.BATCH_SIZE)).isEqualTo(500);
    }

    @Test
    void requiredSettingsAreNamedWithEveryWayToGiveThem() {
        assertThatThrownBy(() ->
                        RelaySettings.resolve(Map.of("bootstrap-servers", "k:9092"), Map.of(), Map.of(), "", true))
                .hasMessage(
                        "Missing setting jdbc-url (OUTBOX_RELAY_JDBC_URL), which the relay needs: set flag --jdbc-url=<value>,"
                                + " environment variable OUTBOX_RELAY_JDBC_URL or file key relay.jdbc.url. See --help.");
        assertThatThrownBy(() -> RelaySettings.resolve(
                        Map.of("jdbc-url", "jdbc:postgresql://db/x"), Map.of(), Map.of(), "", true))
                .hasMessageStartingWith("Missing setting bootstrap-servers (OUTBOX_RELAY_BOOTSTRAP_SERVERS)");
        // the admin commands need only the database
        RelaySettings.Values admin =
                RelaySettings.resolve(Map.of("jdbc-url", "jdbc:postgresql://db/x"), Map.of(), Map.of(), "", false);
        assertThat(admin.string(RelaySettings.JDBC_URL)).isEqualTo("jdbc:postgresql://db/x");
    }

    @Test
    void propertiesTheRelayEnforcesCannotBeOverridden() {
        assertThatThrownBy(() -> resolve(Map.of("kafka.acks", "1"), Map.of(), Map.of()))
                .hasMessageContaining("Invalid value 1 for Kafka producer property acks (given by flag --kafka.acks)");
        assertThatThrownBy(() -> resolve(Map.of(), Map.of("OUTBOX_RELAY_KAFKA_ENABLE_IDEMPOTENCE", "false"), Map.of()))
                .hasMessageContaining("enable.idempotence")
                .hasMessageContaining("OUTBOX_RELAY_KAFKA_ENABLE_IDEMPOTENCE");
        assertThatThrownBy(() -> resolve(Map.of("kafka.bootstrap.servers", "x:1"), Map.of(), Map.of()))
                .hasMessageContaining("use the setting bootstrap-servers instead");
        assertThatThrownBy(() -> resolve(Map.of("kafka.value.serializer", "x"), Map.of(), Map.of()))
                .hasMessageContaining("value.serializer");
        assertThatThrownBy(() -> resolve(Map.of("kafka.transactional.id", "mine"), Map.of(), Map.of()))
                .hasMessageContaining(
                        "Kafka producer property transactional.id (given by flag --kafka.transactional.id) cannot be set")
                .hasMessageContaining("publish-mode=transactional");
        assertThat(resolve(Map.of("kafka.acks", "all", "kafka.enable.idempotence", "true"), Map.of(), Map.of())
                        .producerProperties())
                .containsEntry("acks", "all");
    }

    @Test
    void kafkaValuesAreCheckedByKafkasOwnDefinitions() {
        assertThatThrownBy(() -> resolve(Map.of(), Map.of("OUTBOX_RELAY_KAFKA_LINGER_MS", "soon"), Map.of()))
                .hasMessageContaining("given by environment variable OUTBOX_RELAY_KAFKA_LINGER_MS")
                .hasMessageContaining("linger.ms");
        assertThatThrownBy(() -> resolve(Map.of("kafka.compression.type", "zip"), Map.of(), Map.of()))
                .hasMessageContaining("compression.type")
                .hasMessageContaining("zstd");
    }

    @Test
    void conflictingSettingsNameBoth() {
        assertThatThrownBy(() -> resolve(Map.of("backoff-base", "10s", "backoff-cap", "1s"), Map.of(), Map.of()))
                .hasMessageStartingWith(
                        "Conflicting settings backoff-cap (OUTBOX_RELAY_BACKOFF_CAP) = 1s and backoff-base (OUTBOX_RELAY_BACKOFF_BASE) = 10s");
        assertThatThrownBy(() -> resolve(Map.of("db-pool-size", "5", "worker-threads", "4"), Map.of(), Map.of()))
                .hasMessageContaining("db-pool-size")
                .hasMessageContaining("worker-threads");
        assertThatThrownBy(
                        () -> resolve(Map.of("lease-duration", "2s", "idle-poll-interval", "5s"), Map.of(), Map.of()))
                .hasMessageContaining("idle-poll-interval")
                .hasMessageContaining("lease-duration");
        assertThatThrownBy(() -> resolve(Map.of("transactional-id-prefix", "orders."), Map.of(), Map.of()))
                .hasMessageStartingWith(
                        "Conflicting settings transactional-id-prefix (OUTBOX_RELAY_TRANSACTIONAL_ID_PREFIX) = orders."
                                + " and publish-mode (OUTBOX_RELAY_PUBLISH_MODE) = idempotent");
    }

    @Test
    void publishModeAndTransactionalIdPrefix() {
        RelaySettings.Values v = resolve(
                Map.of("publish-mode", "Transactional"),
                Map.of("OUTBOX_RELAY_TRANSACTIONAL_ID_PREFIX", "orders-outbox."),
                Map.of());
        assertThat(v.publishMode()).isEqualTo(PublishMode.TRANSACTIONAL);
        assertThat(v.string(RelaySettings.TRANSACTIONAL_ID_PREFIX)).isEqualTo("orders-outbox.");
        assertThatThrownBy(() -> resolve(Map.of("publish-mode", "exactly-once"), Map.of(), Map.of()))
                .hasMessageContaining("Invalid value exactly-once for setting publish-mode")
                .hasMessageContaining("IDEMPOTENT, TRANSACTIONAL");
        assertThatThrownBy(() -> resolve(
                        Map.of("publish-mode", "transactional", "transactional-id-prefix", "a b"), Map.of(), Map.of()))
                .hasMessageContaining("transactional-id-prefix");
    }

    @Test
    void durationsAcceptUnitsAndIso8601() {
        assertThat(RelaySettings.durationBetween("250ms", Duration.ZERO, Duration.ofHours(1)))
                .isEqualTo(Duration.ofMillis(250));
        assertThat(RelaySettings.durationBetween("5m", Duration.ZERO, Duration.ofHours(1)))
                .isEqualTo(Duration.ofMinutes(5));
        assertThat(RelaySettings.durationBetween("PT1.5S", Duration.ZERO, Duration.ofHours(1)))
                .isEqualTo(Duration.ofMillis(1500));
        assertThat(RelaySettings.durationBetween("7d", Duration.ZERO, Duration.ofDays(10)))
                .isEqualTo(Duration.ofDays(7));
        assertThat(RelaySettings.format(Duration.ofMillis(1500))).isEqualTo("1s500ms");
        assertThat(RelaySettings.format(Duration.ofSeconds(90))).isEqualTo("1m30s");
    }

    @Test
    void durationsReadBackAsEveryMessageWritesThem() {
        for (Duration d : List.of(
                Duration.ofMillis(1500), Duration.ofSeconds(90), Duration.ofHours(27), Duration.ofMillis(3_723_004))) {
            assertThat(RelaySettings.durationBetween(RelaySettings.format(d), Duration.ZERO, Duration.ofDays(2)))
                    .isEqualTo(d);
        }
        assertThatThrownBy(() -> RelaySettings.durationBetween("30sm", Duration.ZERO, Duration.ofHours(1)))
                .hasMessageContaining("with a unit");
    }

    @Test
    void sizesAcceptBinaryUnitsAndReadBackAsTheReferenceWritesThem() {
        assertThat(Validators.sizeBetween("4MiB", 1024, 1 << 30)).isEqualTo(4 << 20);
        assertThat(Validators.sizeBetween("512 kib", 1024, 1 << 30)).isEqualTo(512 << 10);
        assertThat(Validators.sizeBetween("65536", 1024, 1 << 30)).isEqualTo(65536);
        assertThat(Validators.sizeBetween("1GiB", 1024, 1 << 30)).isEqualTo(1 << 30);
        for (int bytes : new int[] {1024, 1536 << 10, 4 << 20, 1 << 30, 100_000}) {
            assertThat(Validators.sizeBetween(Validators.formatSize(bytes), 1, 1 << 30))
                    .isEqualTo(bytes);
        }
        assertThat(Validators.formatSize(1536 << 10)).isEqualTo("1536KiB");
        assertThatThrownBy(() -> Validators.sizeBetween("4MB", 1024, 1 << 30)).hasMessageContaining("KiB, MiB or GiB");
        assertThatThrownBy(() -> Validators.sizeBetween("9999999999GiB", 1024, 1 << 30))
                .hasMessage("must be between 1KiB and 1GiB");
        assertThatThrownBy(() -> Validators.sizeBetween("2GiB", 1024, 1 << 30))
                .hasMessage("must be between 1KiB and 1GiB");
        assertThatThrownBy(() -> Validators.sizeBetween("1023", 1024, 1 << 30))
                .hasMessage("must be between 1KiB and 1GiB");
    }

    @Test
    void theTableIsConsistent() {
        Set<String> names = new HashSet<>();
        for (Setting<?> s : RelaySettings.ALL) {
            assertThat(names.add(s.name())).as("unique name %s", s.name()).isTrue();
            assertThat(s.name()).matches("[a-z]+(-[a-z]+)*");
            assertThat(s.name())
                    .as("a setting may not shadow the kafka pass-through")
                    .doesNotStartWith("kafka");
            assertThat(s.doc()).isNotBlank();
            assertThat(s.required() || s.defaultValue() != null)
                    .as("%s has a default or is required", s.name())
                    .isTrue();
            if (s.defaultValue() != null) {
                assertThat(s.parser().apply(s.defaultValue()))
                        .as("default of %s is valid", s.name())
                        .isNotNull();
            }
        }
    }

    @Test
    void helpListsEverySettingWithItsEnvironmentVariableAndFileKey() {
        String help = Main.usage();
        for (Setting<?> s : RelaySettings.ALL) {
            assertThat(help).contains(s.flag() + "=").contains(s.envVar()).contains(s.fileKey());
        }
    }
}
