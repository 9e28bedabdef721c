package dev.outbox.http.client.internal;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoField;
import java.util.Locale;

/**
 * Parses {@code Retry-After}: delay-seconds or an HTTP date in any of the three formats a recipient
 * must accept (RFC 9110, sections 5.6.7 and 10.2.3): IMF-fixdate, RFC 850 and asctime.
 */
final class RetryAfter {
    /** Longer than any wait a caller would accept: a larger delay-seconds is read as this. */
    private static final long LONGEST_SECONDS = 999_999_999_999L;

    /** {@code Sunday, 06-Nov-94 08:49:37 GMT}; the two-digit year is read by {@link #rfc850(int)}. */
    private static final String RFC_850 = "EEEE, dd-MMM-";

    /** {@code Sun Nov  6 08:49:37 1994}: the day padded with a space. */
    private static final DateTimeFormatter ASCTIME =
            DateTimeFormatter.ofPattern("EEE MMM ppd HH:mm:ss yyyy", Locale.US).withZone(ZoneOffset.UTC);

    private RetryAfter() {}

    /** @return the delay, never negative, or null when the value is absent or unreadable */
    static Duration parse(String value, Clock clock) {
        if (value == null) {
            return null;
        }
        String v = value.strip();
        if (v.matches("\\d+")) {
            return Duration.ofSeconds(v.length() > 12 ? LONGEST_SECONDS : Math.min(Long.parseLong(v), LONGEST_SECONDS));
        }
        Instant at = httpDate(v, clock);
        if (at == null) {
            return null;
        }
        Duration d = Duration.between(clock.instant(), at);
        return d.isNegative() ? Duration.ZERO : d;
    }

    private static Instant httpDate(String v, Clock clock) {
        int year = LocalDate.ofInstant(clock.instant(), ZoneOffset.UTC).getYear();
        for (DateTimeFormatter format :
                new DateTimeFormatter[] {DateTimeFormatter.RFC_1123_DATE_TIME, rfc850(year), ASCTIME}) {
            try {
                return ZonedDateTime.parse(v, format).toInstant();
            } catch (DateTimeParseException e) {
                // the next format
            }
        }
        return null;
    }

    /**
     * RFC 850 with its two-digit year read as RFC 9110 asks: a year that would be more than 50 years
     * in the future is the most recent past year with the same last two digits.
     */
    private static DateTimeFormatter rfc850(int currentYear) {
        return new DateTimeFormatterBuilder()
                .appendPattern(RFC_850)
                .appendValueReduced(ChronoField.YEAR, 2, 2, currentYear - 49)
                .appendPattern(" HH:mm:ss 'GMT'")
                .toFormatter(Locale.US)
                .withZone(ZoneOffset.UTC);
    }
}
