package dev.outbox.http.client.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;

class RetryAfterTest {
    private final Clock clock = Clock.fixed(Instant.parse("2026-03-01T12:00:00Z"), ZoneOffset.UTC);

    @Test
    void readsSecondsAndHttpDates() {
        assertThat(RetryAfter.parse("3", clock)).isEqualTo(Duration.ofSeconds(3));
        assertThat(RetryAfter.parse(" 0 ", clock)).isEqualTo(Duration.ZERO);
        assertThat(RetryAfter.parse("Sun, 01 Mar 2026 12:00:07 GMT", clock)).isEqualTo(Duration.ofSeconds(7));
        assertThat(RetryAfter.parse("Sun, 01 Mar 2026 11:00:00 GMT", clock)).isEqualTo(Duration.ZERO);
    }

    /**
     * The two obsolete HTTP-date formats a recipient must accept (RFC 9110, 5.6.7), and delay-seconds
     * of any length. Before, each was unreadable, so the client retried after its own short backoff,
     * earlier than the server asked, and never reported the wait as too long.
     */
    @Test
    void readsTheObsoleteDateFormatsAndLongDelays() {
        assertThat(RetryAfter.parse("Sunday, 01-Mar-26 12:00:07 GMT", clock)).isEqualTo(Duration.ofSeconds(7));
        assertThat(RetryAfter.parse("Sun Mar  1 12:00:07 2026", clock)).isEqualTo(Duration.ofSeconds(7));
        assertThat(RetryAfter.parse("Tue Mar 10 12:00:00 2026", clock)).isEqualTo(Duration.ofDays(9));
        // a two-digit year more than 50 years ahead is in the past
        assertThat(RetryAfter.parse("Saturday, 01-Mar-80 12:00:00 GMT", clock)).isEqualTo(Duration.ZERO);
        assertThat(RetryAfter.parse("Wednesday, 01-Mar-73 12:00:00 GMT", clock))
                .isEqualTo(
                        Duration.between(Instant.parse("2026-03-01T12:00:00Z"), Instant.parse("2073-03-01T12:00:00Z")));
        assertThat(RetryAfter.parse("1000000000", clock)).isEqualTo(Duration.ofSeconds(1_000_000_000L));
        assertThat(RetryAfter.parse("99999999999999999999999", clock)).isGreaterThan(Duration.ofDays(365L * 1000));
    }

    @Test
    void ignoresWhatItCannotRead() {
        assertThat(RetryAfter.parse(null, clock)).isNull();
        assertThat(RetryAfter.parse("-1", clock)).isNull();
        assertThat(RetryAfter.parse("soon", clock)).isNull();
    }
}
