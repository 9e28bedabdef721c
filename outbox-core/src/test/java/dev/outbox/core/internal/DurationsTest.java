package dev.outbox.core.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class DurationsTest {

    @Test
    void writesTheWholeUnitsLargestFirst() {
        assertThat(Durations.format(Duration.ZERO)).isEqualTo("0s");
        assertThat(Durations.format(Duration.ofMillis(100))).isEqualTo("100ms");
        assertThat(Durations.format(Duration.ofSeconds(30))).isEqualTo("30s");
        assertThat(Durations.format(Duration.ofHours(1))).isEqualTo("1h");
        assertThat(Durations.format(Duration.ofSeconds(90))).isEqualTo("1m30s");
        assertThat(Durations.format(Duration.ofMillis(1500))).isEqualTo("1s500ms");
        assertThat(Durations.format(Duration.ofHours(7 * 24 + 3))).isEqualTo("7d3h");
        assertThat(Durations.format(Duration.ofSeconds(-5))).isEqualTo("-5s");
    }

    /** A duration past what milliseconds hold, given for "no limit", is named in an error rather than overflowing. */
    @Test
    void writesADurationBeyondMillisecondsInDays() {
        assertThat(Durations.format(Duration.ofSeconds(Long.MAX_VALUE))).isEqualTo(Long.MAX_VALUE / 86_400 + "d");
    }

    @Test
    void writesBelowAMillisecondAsADecimal() {
        assertThat(Durations.format(Duration.ofNanos(500_000))).isEqualTo("0.5ms");
        assertThat(Durations.format(Duration.ofSeconds(1).plusNanos(1_250_000))).isEqualTo("1s1.25ms");
    }

    @Test
    void roughlyKeepsWhatAPersonReadsAtAGlance() {
        assertThat(Durations.format(Durations.roughly(Duration.ofMillis(850)))).isEqualTo("850ms");
        assertThat(Durations.format(Durations.roughly(Duration.ofMillis(12_345))))
                .isEqualTo("12s");
        assertThat(Durations.format(Durations.roughly(Duration.ofMillis(200_400))))
                .isEqualTo("3m20s");
        assertThat(Durations.format(Durations.roughly(Duration.ofSeconds(5 * 3600 + 12 * 60 + 7))))
                .isEqualTo("5h12m");
        assertThat(Durations.format(Durations.roughly(Duration.ofMinutes(7 * 24 * 60 + 3 * 60 + 59))))
                .isEqualTo("7d3h");
    }
}
