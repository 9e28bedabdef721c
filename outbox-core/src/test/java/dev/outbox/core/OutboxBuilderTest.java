package dev.outbox.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/**
 * The builder's contract: a setter rejects a null argument with {@link NullPointerException} and a
 * bad value with {@link IllegalArgumentException} at once, naming the setting, before anything is
 * built.
 */
class OutboxBuilderTest {

    @Test
    void settersRejectNullWithNullPointerException() {
        Outbox.Builder b = Outbox.builder();
        assertThatThrownBy(() -> b.schema(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("schema");
        assertThatThrownBy(() -> b.codec(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("codec");
        assertThatThrownBy(() -> b.traceparent(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("traceparent");
    }

    @Test
    void settersRejectBadValuesWithIllegalArgumentException() {
        Outbox.Builder b = Outbox.builder();
        assertThatThrownBy(() -> b.schema("Bad-Name"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("\"Bad-Name\" is not a plain SQL identifier");
        assertThatThrownBy(() -> b.schema("pg_outbox"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("pg_");
        assertThatThrownBy(() -> b.shards(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("shards must be between 1 and 4096, got 0");
        assertThatThrownBy(() -> b.shards(Shards.MAX_COUNT + 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(String.valueOf(Shards.MAX_COUNT));
    }

    @Test
    void theDefaultsBuild() {
        Outbox outbox = Outbox.builder().build();
        assertThat(outbox.schema()).isEqualTo("outbox");
        assertThat(outbox.shardCount()).isEqualTo(Shards.DEFAULT_COUNT);
    }
}
