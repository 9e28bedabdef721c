package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Kubernetes Service variables, secrets in the JDBC URL and Kafka properties, and the JDBC timeouts. */
class ProcessSettingsEdgesTest {
    private static final Map<String, String> BASE = Map.of(
            "OUTBOX_RELAY_JDBC_URL", "jdbc:postgresql://db:5432/app", "OUTBOX_RELAY_BOOTSTRAP_SERVERS", "kafka:9092");

    private static RelaySettings.Values resolveEnv(Map<String, String> extra) {
        Map<String, String> env = new HashMap<>(BASE);
        env.putAll(extra);
        return RelaySettings.resolve(Map.of(), env, Map.of(), "relay.properties", true);
    }

    @Test
    void kubernetesServiceVariablesAreIgnoredButTyposAreStillRefused() {
        RelaySettings.Values v = resolveEnv(Map.of(
                "OUTBOX_RELAY_PORT", "tcp://10.0.0.7:8080",
                "OUTBOX_RELAY_SERVICE_HOST", "10.0.0.7",
                "OUTBOX_RELAY_SERVICE_PORT", "8080",
                "OUTBOX_RELAY_SERVICE_PORT_HTTP", "8080",
                "OUTBOX_RELAY_PORT_8080_TCP", "tcp://10.0.0.7:8080",
                "OUTBOX_RELAY_PORT_8080_TCP_ADDR", "10.0.0.7",
                "OUTBOX_RELAY_PORT_8080_TCP_PORT", "8080",
                "OUTBOX_RELAY_PORT_8080_TCP_PROTO", "tcp"));
        assertThat(v.string(RelaySettings.JDBC_URL)).isEqualTo("jdbc:postgresql://db:5432/app");
        assertThatThrownBy(() -> resolveEnv(Map.of("OUTBOX_RELAY_HTTP_PROT", "8080")))
                .hasMessageContaining("OUTBOX_RELAY_HTTP_PROT");
        assertThatThrownBy(() -> resolveEnv(Map.of("OUTBOX_RELAY_PORT_HTTP", "8080")))
                .hasMessageContaining("OUTBOX_RELAY_PORT_HTTP");
    }

    @Test
    void secretsInTheJdbcUrlAndKafkaPropertiesAreMasked() {
        String url = "jdbc:postgresql://db:5432/app?user=relay&password=hunter2&sslpassword=s3cret&ApplicationName=x";
        RelaySettings.Values v = RelaySettings.resolve(
                Map.of(
                        "jdbc-url",
                        url,
                        "bootstrap-servers",
                        "k:9092",
                        "kafka.sasl.oauthbearer.assertion.private.key.passphrase",
                        "pp1",
                        "kafka.ssl.key.password",
                        "kp1",
                        "kafka.sasl.jaas.config",
                        "x password=\"jp1\";",
                        "kafka.sasl.oauthbearer.client.credentials.client.secret",
                        "cs1"),
                Map.of(),
                Map.of(),
                "relay.properties",
                true);
        String described = v.describe();
        assertThat(described)
                .doesNotContain("hunter2", "s3cret", "pp1", "kp1", "jp1", "cs1")
                .contains("user=relay&password=****&sslpassword=****&ApplicationName=x");
        assertThatThrownBy(() -> RelaySettings.resolve(
                        Map.of("jdbc-url", "jdbc:mysql://db/x?password=hunter2", "bootstrap-servers", "k:9092"),
                        Map.of(),
                        Map.of(),
                        "relay.properties",
                        true))
                .hasMessageNotContaining("hunter2");
    }

    /**
     * pgjdbc lets URL parameters win over the pool's properties: a jdbc-url with its own options or
     * socketTimeout would silently replace the lease-bounded timeouts, so it is refused at start, naming
     * the parameter and why; other parameters still pass, and the LISTEN URL is not concerned.
     */
    @Test
    void aJdbcUrlThatWouldOverrideTheLeaseBoundedTimeoutsIsRefused() {
        assertThatThrownBy(
                        () -> resolveEnv(
                                Map.of(
                                        "OUTBOX_RELAY_JDBC_URL",
                                        "jdbc:postgresql://db:5432/app?ApplicationName=x&options=-c%20statement_timeout=0&password=hunter2")))
                .hasMessageContaining("setting jdbc-url")
                .hasMessageContaining("must not carry an options= parameter")
                .hasMessageContaining("statement_timeout and lock_timeout from lease-duration")
                .hasMessageNotContaining("hunter2");
        assertThatThrownBy(() -> resolveEnv(Map.of(
                        "OUTBOX_RELAY_JDBC_URL", "jdbc:postgresql://db:5432/app?sslmode=require&socketTimeout=0")))
                .hasMessageContaining("setting jdbc-url")
                .hasMessageContaining("must not carry a socketTimeout= parameter")
                .hasMessageContaining("lease-duration");
        assertThat(resolveEnv(Map.of(
                                "OUTBOX_RELAY_JDBC_URL",
                                "jdbc:postgresql://db:5432/app?sslmode=require&connectTimeout=5",
                                "OUTBOX_RELAY_LISTEN_JDBC_URL",
                                "jdbc:postgresql://db:5432/app?options=-c%20search_path=x"))
                        .string(RelaySettings.JDBC_URL))
                .isEqualTo("jdbc:postgresql://db:5432/app?sslmode=require&connectTimeout=5");
    }

    @Test
    void jdbcTimeoutsStayInsideTheLease() {
        JdbcTimeouts t = JdbcTimeouts.forLease(Duration.ofSeconds(30));
        assertThat(t.options()).isEqualTo("-c statement_timeout=10000 -c lock_timeout=5000");
        assertThat(t.socketTimeoutSeconds()).isEqualTo(12);
        assertThat(JdbcTimeouts.forLease(Duration.ofSeconds(3)).socketTimeoutSeconds())
                .isEqualTo(3);
    }
}
