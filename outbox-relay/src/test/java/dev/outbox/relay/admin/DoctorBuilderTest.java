package dev.outbox.relay.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The builder's contract: a setter rejects a null argument with {@link NullPointerException} and a
 * bad value with {@link IllegalArgumentException}, naming the setting and the default; {@code
 * build()} rejects a missing database with {@link IllegalStateException}.
 */
class DoctorBuilderTest {

    @Test
    void settersRejectNullWithNullPointerException() {
        Doctor.Builder b = Doctor.builder();
        assertThatThrownBy(() -> b.dataSource(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("dataSource");
        assertThatThrownBy(() -> b.schema(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("schema");
        assertThatThrownBy(() -> b.keyTtl(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("keyTtl");
        assertThatThrownBy(() -> b.lockTimeout(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("lockTimeout");
        assertThatThrownBy(() -> b.processedRetention(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("processedRetention");
        assertThatThrownBy(() -> b.consumerRetention(null, Duration.ofDays(1)))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("consumer");
        assertThatThrownBy(() -> b.consumerRetention("payments", null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("retention of consumer payments");
        assertThatThrownBy(() -> b.consumer(null, "orders"))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("consumer");
        assertThatThrownBy(() -> b.consumer("payments", (String[]) null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("topics");
        assertThatThrownBy(() -> b.consumer("payments", "orders", null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("topic of consumer payments");
        assertThatThrownBy(() -> b.kafkaProperties(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("properties");
        assertThatThrownBy(() -> b.purgeGrace(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("purgeGrace");
        assertThatThrownBy(() -> b.maxUnpublishedAge(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("maxUnpublishedAge");
        assertThatThrownBy(() -> b.kafkaTimeout(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("kafkaTimeout");
    }

    @Test
    void settersRejectBadValuesWithIllegalArgumentException() {
        Doctor.Builder b = Doctor.builder();
        assertThatThrownBy(() -> b.schema("Bad-Schema")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> b.keyTtl(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("keyTtl must be positive, got 0s; the default is 1d");
        assertThatThrownBy(() -> b.lockTimeout(Duration.ofSeconds(-1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("lockTimeout")
                .hasMessageContaining("default is 2s");
        assertThatThrownBy(() -> b.processedRetention(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("default is 7d");
        assertThatThrownBy(() -> b.purgeGrace(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("default is 2h");
        assertThatThrownBy(() -> b.maxUnpublishedAge(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("default is 5m");
        assertThatThrownBy(() -> b.kafkaTimeout(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("default is 15s");
        assertThatThrownBy(() -> b.consumerRetention(" ", Duration.ofDays(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("consumer may not be blank");
        assertThatThrownBy(() -> b.consumerRetention("payments", Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("retention of consumer payments must be positive, got 0s");
        assertThatThrownBy(() -> b.consumer("payments"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("at least one topic");
        assertThatThrownBy(() -> b.consumer("payments", "orders", " "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("topic of consumer payments may not be blank");
        assertThatThrownBy(() -> b.kafkaProperties(Map.of("client.id", "x")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("bootstrap.servers");
    }

    @Test
    void buildNeedsTheDatabase() {
        assertThatThrownBy(() -> Doctor.builder().build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("dataSource(dataSource)");
        assertThat(Doctor.builder().dataSource(new PGSimpleDataSource()).build())
                .isNotNull();
    }

    @Test
    void theDefaultsAreThePublishedConstants() {
        assertThat(Doctor.Builder.DEFAULT_KEY_TTL).isEqualTo(Duration.ofHours(24));
        assertThat(Doctor.Builder.DEFAULT_LOCK_TIMEOUT).isEqualTo(Duration.ofSeconds(2));
        assertThat(Doctor.Builder.DEFAULT_PROCESSED_RETENTION).isEqualTo(Duration.ofDays(7));
    }
}
