package dev.outbox.bench.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The relay benchmark's command line: defaults, the comparison options, and errors that name the option. */
class RelayOptionsTest {

    @Test
    void defaultsLeaveTheDebeziumComparisonOff() {
        RelayOptions o = RelayOptions.parse(new String[0]);
        assertThat(o.compareDebezium()).isFalse();
        assertThat(o.statements()).isFalse();
        assertThat(o.relayProcess()).isFalse();
        assertThat(o.compareSeconds()).isEqualTo(15);
        assertThat(o.compareRounds()).isEqualTo(2);
        assertThat(o.batchSizes()).containsExactly(100, 500, 2_000);
    }

    @Test
    void readsTheComparisonOptionsAmongTheOthers() {
        RelayOptions o = RelayOptions.parse(new String[] {
            "--compare-debezium",
            "--messages",
            "50000",
            "--compare-seconds",
            "5",
            "--compare-rounds",
            "3",
            "--skip-million",
            "--batch-sizes",
            "500",
            "--statements",
            "--relay-process"
        });
        assertThat(o.compareDebezium()).isTrue();
        assertThat(o.statements()).isTrue();
        assertThat(o.relayProcess()).isTrue();
        assertThat(o.compareSeconds()).isEqualTo(5);
        assertThat(o.compareRounds()).isEqualTo(3);
        assertThat(o.messages()).isEqualTo(50_000);
        assertThat(o.skipMillion()).isTrue();
        assertThat(o.batchSizes()).containsExactly(500);
    }

    @Test
    void refusesANonPositiveLevelLengthNamingTheOption() {
        assertThatThrownBy(() -> RelayOptions.parse(new String[] {"--compare-seconds", "0"}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--compare-seconds");
        assertThatThrownBy(() -> RelayOptions.parse(new String[] {"--compare-rounds"}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--compare-rounds needs a value");
    }
}
