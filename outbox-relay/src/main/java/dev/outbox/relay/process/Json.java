package dev.outbox.relay.process;

import java.lang.reflect.RecordComponent;
import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.Map;
import java.util.UUID;

/** A small JSON writer for the admin commands' {@code --json} output: records, lists, maps, scalars. */
final class Json {
    private Json() {}

    /**
     * @param value a record, collection, map, string, number, boolean, {@link Instant} (ISO-8601),
     *     {@link Duration} (seconds, fractional), {@link UUID} or null
     * @return its JSON text
     */
    static String write(Object value) {
        StringBuilder b = new StringBuilder();
        write(b, value);
        return b.toString();
    }

    private static void write(StringBuilder b, Object v) {
        switch (v) {
            case null -> b.append("null");
            case String s -> b.append(quote(s));
            case Boolean x -> b.append(x);
            case Number n -> b.append(n);
            case Instant t -> b.append(quote(t.toString()));
            case UUID u -> b.append(quote(u.toString()));
            case Duration d -> b.append(d.toNanos() / 1e9);
            case Enum<?> e -> b.append(quote(e.name()));
            case Collection<?> c -> {
                b.append('[');
                boolean first = true;
                for (Object o : c) {
                    b.append(first ? "" : ",");
                    first = false;
                    write(b, o);
                }
                b.append(']');
            }
            case Map<?, ?> m -> {
                b.append('{');
                boolean first = true;
                for (var e : m.entrySet()) {
                    b.append(first ? "" : ",")
                            .append(quote(String.valueOf(e.getKey())))
                            .append(':');
                    first = false;
                    write(b, e.getValue());
                }
                b.append('}');
            }
            case Record r -> {
                b.append('{');
                boolean first = true;
                for (RecordComponent c : r.getClass().getRecordComponents()) {
                    b.append(first ? "" : ",").append(quote(c.getName())).append(':');
                    first = false;
                    try {
                        write(b, c.getAccessor().invoke(r));
                    } catch (ReflectiveOperationException e) {
                        throw new IllegalStateException(
                                "cannot read " + c.getName() + " of "
                                        + r.getClass().getName(),
                                e);
                    }
                }
                b.append('}');
            }
            default -> b.append(quote(v.toString()));
        }
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }
}
