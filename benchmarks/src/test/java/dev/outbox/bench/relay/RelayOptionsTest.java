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
    void readsProbeIntervalsAndAnIdleSteadyLevel() {
        RelayOptions o =
                RelayOptions.parse(new String[] {"--probe-intervals", "5/5, 5/10,7", "--steady-rates", "5000,0"});
        assertThat(o.probeIntervals())
                .containsExactly(
                        new RelayOptions.ProbeIntervals(5, 5),
                        new RelayOptions.ProbeIntervals(5, 10),
                        new RelayOptions.ProbeIntervals(7, 0));
        assertThat(o.steadyRates()).containsExactly(5_000, 0);
        assertThat(RelayOptions.parse(new String[0]).probeIntervals())
                .containsExactly(new RelayOptions.ProbeIntervals(5, 0));
        assertThatThrownBy(() -> RelayOptions.parse(new String[] {"--probe-intervals", "5/10/15"}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--probe-intervals takes entries of the form I or I/L");
        assertThatThrownBy(() -> RelayOptions.parse(new String[] {"--probe-intervals", "5/0"}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--probe-intervals must be a positive integer");
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
