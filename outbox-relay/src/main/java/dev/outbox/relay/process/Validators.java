package dev.outbox.relay.process;

import dev.outbox.core.internal.Durations;
import dev.outbox.migrations.OutboxMigrations;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.postgresql.Driver;

/** The {@link Validator}s of the settings table. */
final class Validators {
    /** One or more parts, largest unit first as {@link Durations#format} writes them: {@code 30s}, {@code 1m30s}, {@code 7d}. */
    private static final Pattern DURATION = Pattern.compile("(?:\\d{1,9}(?:ms|s|m|h|d))+");

    private static final Pattern DURATION_PART = Pattern.compile("(\\d{1,9})(ms|s|m|h|d)");
    /** A whole number of bytes, with a binary unit or none: {@code 4MiB}, {@code 512KiB}, {@code 1048576}. */
    private static final Pattern SIZE = Pattern.compile("(\\d{1,10})\\s*(B|KiB|MiB|GiB)?", Pattern.CASE_INSENSITIVE);

    private static final String[] SIZE_UNITS = {"B", "KiB", "MiB", "GiB"};

    private static final Pattern HOST_PORT = Pattern.compile("(\\[[0-9a-fA-F:.]+]|[A-Za-z0-9._-]+):(\\d{1,5})");
    private static final Pattern INSTANCE = Pattern.compile("[A-Za-z0-9._:@-]{1,200}");
    private static final Pattern URL_SECRET =
            Pattern.compile("(?i)([?&;][^=&;]*(password|passphrase|secret|token|key)[^=&;]*=)[^&;]*");

    private Validators() {}

    /** How a {@link Range} reads a value and checks it against its bounds. */
    interface RangeParser<T> {
        T parse(String text, T min, T max);
    }

    /** A value of an ordered kind (integer, duration) in {@code min..max}. */
    record Range<T extends Comparable<T>>(
            String kind, T min, T max, Function<T, String> formatter, RangeParser<T> parser)
            implements Validator.Bounded<T> {
        @Override
        public T parse(String text) {
            return parser.parse(text, min, max);
        }

        @Override
        public String describe() {
            return kind + " " + format(min) + ".." + format(max);
        }

        @Override
        public String format(T value) {
            return formatter.apply(value);
        }
    }

    static Validator.Bounded<Integer> integer(int min, int max) {
        return new Range<>("integer", min, max, String::valueOf, Validators::intBetween);
    }

    static Validator.Bounded<Integer> size(int min, int max) {
        return new Range<>("size", min, max, Validators::formatSize, Validators::sizeBetween);
    }

    static Validator.Bounded<Duration> duration(Duration min, Duration max) {
        return new Range<>("duration", min, max, Durations::format, Validators::durationBetween);
    }

    /**
     * @param describe what it accepts, for the reference
     * @param parse the check and conversion, throwing {@link IllegalArgumentException} "must be ..."
     */
    static Validator<String> text(String describe, UnaryOperator<String> parse) {
        return new Validator<>() {
            @Override
            public String parse(String text) {
                return parse.apply(text);
            }

            @Override
            public String describe() {
                return describe;
            }
        };
    }

    /** Any text, the empty text included. */
    static Validator<String> text() {
        return text("text", v -> v);
    }

    /**
     * @param normalize how a given value is brought to the spelling of {@code choices}
     * @param choices the accepted values, in the order {@code --help} lists them
     */
    static Validator<String> oneOf(UnaryOperator<String> normalize, String... choices) {
        List<String> list = List.of(choices);
        String described = String.join(", ", list.subList(0, list.size() - 1)) + " or " + list.get(list.size() - 1);
        return text(described, v -> {
            String norm = normalize.apply(v.trim());
            if (!list.contains(norm)) {
                throw new IllegalArgumentException("must be one of " + String.join(", ", list));
            }
            return norm;
        });
    }

    /** The constants of an enum, given in any case and with {@code -} for {@code _}. */
    static <E extends Enum<E>> Validator<E> oneOf(Class<E> type) {
        E[] constants = type.getEnumConstants();
        Validator<String> names = oneOf(
                v -> v.toUpperCase(Locale.ROOT).replace('-', '_'),
                Arrays.stream(constants).map(Enum::name).toArray(String[]::new));
        return new Validator<>() {
            @Override
            public E parse(String text) {
                return Enum.valueOf(type, names.parse(text));
            }

            @Override
            public String describe() {
                return names.describe();
            }

            @Override
            public String format(E value) {
                return value.name();
            }
        };
    }

    /** A PostgreSQL JDBC URL, shown in messages without the values of its secret parameters. */
    static Validator<String> jdbcUrl() {
        return new Validator<>() {
            @Override
            public String parse(String v) {
                if (!v.startsWith("jdbc:postgresql:")) {
                    throw new IllegalArgumentException(
                            "must be a PostgreSQL JDBC URL starting with jdbc:postgresql:, e.g. jdbc:postgresql://db:5432/orders");
                }
                if (Driver.parseURL(v, new Properties()) == null) {
                    // the driver would refuse it at the first connection, with no word of what is wrong
                    throw new IllegalArgumentException("is not a URL the PostgreSQL driver accepts: check the host,"
                            + " the port (1 to 65535) and the database name, e.g. jdbc:postgresql://db:5432/orders");
                }
                return v;
            }

            @Override
            public String describe() {
                return "JDBC URL";
            }

            @Override
            public String redact(String text) {
                return maskUrl(text);
            }
        };
    }

    /**
     * The relay's own JDBC URL: a PostgreSQL one without the {@code options} and {@code socketTimeout}
     * parameters. pgjdbc lets a URL parameter win over the properties the pool passes, so either would
     * silently replace the lease-bounded {@code statement_timeout} and {@code lock_timeout} (both in
     * {@code options}) or {@code socketTimeout} that end a statement on a lost database within a lease.
     */
    static Validator<String> relayJdbcUrl() {
        Validator<String> url = jdbcUrl();
        return new Validator<>() {
            @Override
            public String parse(String v) {
                url.parse(v);
                int q = v.indexOf('?');
                if (q >= 0) {
                    for (String parameter : v.substring(q + 1).split("&")) {
                        int eq = parameter.indexOf('=');
                        String name = (eq < 0 ? parameter : parameter.substring(0, eq)).strip();
                        if (name.equalsIgnoreCase("options")) {
                            throw new IllegalArgumentException(
                                    "must not carry an options= parameter: pgjdbc lets it win over"
                                            + " the relay's own options, which set statement_timeout and lock_timeout from"
                                            + " lease-duration (a third and a sixth of it) so that a statement on a lost database"
                                            + " fails within a lease; remove it from the URL (set other server parameters with"
                                            + " ALTER ROLE ... SET)");
                        }
                        if (name.equalsIgnoreCase("socketTimeout")) {
                            throw new IllegalArgumentException(
                                    "must not carry a socketTimeout= parameter: pgjdbc lets it win"
                                            + " over the relay's own socketTimeout, derived from lease-duration (a third of it"
                                            + " plus 2 s) so that a read on a black-holed connection fails within a lease; remove it"
                                            + " from the URL");
                        }
                    }
                }
                return v;
            }

            @Override
            public String describe() {
                return url.describe();
            }

            @Override
            public String redact(String text) {
                return url.redact(text);
            }
        };
    }

    /** {@code inner}, or the empty text for "none". */
    static Validator<String> orEmpty(Validator<String> inner) {
        return new Validator<>() {
            @Override
            public String parse(String v) {
                return v.isEmpty() ? v : inner.parse(v);
            }

            @Override
            public String describe() {
                return inner.describe() + " or empty";
            }

            @Override
            public String redact(String text) {
                return inner.redact(text);
            }
        };
    }

    static Validator<String> schema() {
        return text("SQL identifier", v -> {
            try {
                return OutboxMigrations.requireValidSchema(v);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(
                        "must be a plain lower-case SQL identifier ([a-z_][a-z0-9_]*, not reserved,"
                                + " not pg_*), the schema the migrations were applied to");
            }
        });
    }

    static Validator<String> hostPorts() {
        return text("host:port list", v -> {
            List<String> parts = new ArrayList<>();
            for (String p : v.split(",")) {
                String t = p.trim();
                Matcher m = HOST_PORT.matcher(t);
                if (!m.matches() || Integer.parseInt(m.group(2)) < 1 || Integer.parseInt(m.group(2)) > 65_535) {
                    throw new IllegalArgumentException(
                            "must be a comma-separated list of host:port with a port between 1 and 65535,"
                                    + " e.g. kafka-1:9092,kafka-2:9092");
                }
                parts.add(t);
            }
            return String.join(",", parts);
        });
    }

    static Validator<String> instanceId() {
        return text("text", v -> {
            if (!v.isEmpty() && !INSTANCE.matcher(v).matches()) {
                throw new IllegalArgumentException(
                        "must be 1 to 200 characters from A-Z a-z 0-9 . _ : @ -, or empty for host-pid-random");
            }
            return v;
        });
    }

    static Validator<String> transactionalIdPrefix() {
        return text("text", v -> {
            if (!v.isEmpty() && !INSTANCE.matcher(v).matches()) {
                throw new IllegalArgumentException(
                        "must be 1 to 200 characters from A-Z a-z 0-9 . _ : @ -, or empty for outbox-relay.<database>.<schema>.");
            }
            return v;
        });
    }

    static Validator<String> host() {
        return text("host or address", v -> {
            if (v.isBlank()) {
                throw new IllegalArgumentException("must not be empty");
            }
            return v.trim();
        });
    }

    static Integer intBetween(String v, int min, int max) {
        int n;
        try {
            n = Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("must be a whole number between " + min + " and " + max);
        }
        if (n < min || n > max) {
            throw new IllegalArgumentException("must be between " + min + " and " + max);
        }
        return n;
    }

    static Integer sizeBetween(String v, int min, int max) {
        Matcher m = SIZE.matcher(v.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException(
                    "must be a size in bytes, with a unit B, KiB, MiB or GiB or none, e.g. 4MiB, 512KiB or 65536");
        }
        long bytes = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "B" : m.group(2);
        for (String u : SIZE_UNITS) {
            if (u.equalsIgnoreCase(unit)) {
                break;
            }
            bytes = Math.min(bytes, Integer.MAX_VALUE + 1L) * 1024; // past any bound already: no overflow
        }
        if (bytes < min || bytes > max) {
            throw new IllegalArgumentException("must be between " + formatSize(min) + " and " + formatSize(max));
        }
        return (int) bytes;
    }

    /** @return the size in its largest binary unit that divides it: {@code 4MiB}, {@code 1536KiB}, {@code 100B} */
    static String formatSize(int bytes) {
        long n = bytes;
        int unit = 0;
        while (n != 0 && n % 1024 == 0 && unit < SIZE_UNITS.length - 1) {
            n /= 1024;
            unit++;
        }
        return n + SIZE_UNITS[unit];
    }

    static Duration durationBetween(String v, Duration min, Duration max) {
        Duration d = parseDuration(v.trim());
        if (d.compareTo(min) < 0 || d.compareTo(max) > 0) {
            throw new IllegalArgumentException(
                    "must be between " + Durations.format(min) + " and " + Durations.format(max));
        }
        return d;
    }

    private static Duration parseDuration(String v) {
        if (DURATION.matcher(v).matches()) {
            Duration d = Duration.ZERO;
            Matcher m = DURATION_PART.matcher(v);
            while (m.find()) {
                long n = Long.parseLong(m.group(1));
                d = d.plus(
                        switch (m.group(2)) {
                            case "ms" -> Duration.ofMillis(n);
                            case "s" -> Duration.ofSeconds(n);
                            case "m" -> Duration.ofMinutes(n);
                            case "h" -> Duration.ofHours(n);
                            default -> Duration.ofDays(n);
                        });
            }
            return d;
        }
        if (v.startsWith("P") || v.startsWith("p")) {
            try {
                return Duration.parse(v);
            } catch (DateTimeParseException e) {
                // fall through to the common message
            }
        }
        throw new IllegalArgumentException(
                "must be a duration with a unit, e.g. 500ms, 30s, 5m, 1h, 7d or 1m30s (or ISO-8601 such as PT30S)");
    }

    /**
     * @param url a JDBC URL
     * @return the URL with the value of every parameter that looks like a secret ({@code password},
     *     {@code sslpassword}, {@code *secret*}, ...) replaced by {@code ****}
     */
    static String maskUrl(String url) {
        return URL_SECRET.matcher(url).replaceAll("$1****");
    }
}
