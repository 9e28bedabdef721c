package dev.outbox.relay.process;

import static dev.outbox.relay.process.RelaySettings.ALL;

import dev.outbox.relay.process.Setting.Group;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.ConfigDef;

/** The settings table as text: {@code --help}, the README's reference and the start-up log line. */
final class SettingsText {

    private static final String KAFKA_PASS_THROUGH_DOC =
            "Any Kafka producer property, passed to the producer as it is, e.g. `security.protocol`, `sasl.*`, `ssl.*`,"
                    + " `compression.type`, `linger.ms`, `max.request.size`. In the environment, write the property in"
                    + " upper case with `_` for `.`: `OUTBOX_RELAY_KAFKA_LINGER_MS=5`. Unknown property names are refused."
                    + " `enable.idempotence=true` and `acks=all` are enforced; the serializers are the relay's own;"
                    + " `transactional.id` is refused (see publish-mode); so are `partitioner.class`,"
                    + " `partitioner.ignore.keys` and `interceptor.classes` (they can break a key's order);"
                    + " `max.in.flight.requests.per.connection` must be 1 to 5 and `retries` at least 1.";

    private SettingsText() {}

    /** @return the {@code --help} text for the settings, grouped */
    static String helpText() {
        StringBuilder b = new StringBuilder();
        for (Group g : Group.values()) {
            b.append('\n').append(groupTitle(g)).append(":\n");
            for (Setting<?> s : ALL) {
                if (s.group() != g) {
                    continue;
                }
                b.append("  ").append(s.flag()).append("=<value>   ").append(s.type());
                b.append(
                        s.required()
                                ? ", required"
                                : ", default " + (s.defaultValue().isEmpty() ? "(empty)" : s.defaultValue()));
                b.append("\n      env ")
                        .append(s.envVar())
                        .append(", file ")
                        .append(s.fileKey())
                        .append('\n');
                appendWrapped(b, s.doc());
            }
            if (g == Group.KAFKA) {
                b.append(
                        "  --kafka.<property>=<value>\n      env OUTBOX_RELAY_KAFKA_<PROPERTY>, file kafka.<property>\n");
                appendWrapped(b, KAFKA_PASS_THROUGH_DOC);
            }
        }
        return b.toString();
    }

    private static void appendWrapped(StringBuilder b, String doc) {
        for (String line : wrap(doc.replace("`", ""), 86)) {
            b.append("      ").append(line).append('\n');
        }
    }

    /**
     * The README's settings reference, in Markdown; {@code README.md} carries a copy between the
     * markers {@code <!-- settings:start -->} and {@code <!-- settings:end -->}, kept equal by a test.
     *
     * @return the Markdown table and its notes
     */
    static String markdownReference() {
        StringBuilder b = new StringBuilder();
        b.append("| flag | environment variable | file key | values | default | description |\n");
        b.append("|---|---|---|---|---|---|\n");
        for (Setting<?> s : ALL) {
            String def = s.required()
                    ? "**required**"
                    : s.defaultValue().isEmpty() ? "(empty)" : "`" + s.defaultValue() + "`";
            b.append("| `")
                    .append(s.flag())
                    .append("` | `")
                    .append(s.envVar())
                    .append("` | `")
                    .append(s.fileKey())
                    .append("` | ")
                    .append(s.type())
                    .append(" | ")
                    .append(def)
                    .append(" | ")
                    .append(s.doc().replace("|", "\\|"))
                    .append(" |\n");
        }
        b.append(
                        "| `--kafka.<property>` | `OUTBOX_RELAY_KAFKA_<PROPERTY>` | `kafka.<property>` | Kafka producer property | | ")
                .append(KAFKA_PASS_THROUGH_DOC)
                .append(" |\n");
        return b.toString();
    }

    /** @return every setting and its effective value, secrets masked, for the start-up log line */
    static String describe(Map<Setting<?>, Object> values, Map<String, String> producerProperties) {
        StringBuilder b = new StringBuilder();
        for (Setting<?> s : ALL) {
            if (values.containsKey(s)) {
                b.append(b.isEmpty() ? "" : ", ").append(s.name()).append('=').append(shown(s, values.get(s)));
            }
        }
        producerProperties.forEach(
                (k, v) -> b.append(", kafka.").append(k).append('=').append(isSecretProperty(k) ? "****" : v));
        return b.toString();
    }

    private static <T> String shown(Setting<T> s, Object value) {
        @SuppressWarnings("unchecked")
        String text = s.validator().format((T) value);
        return s.isSecret() ? (text.isEmpty() ? "" : "****") : s.validator().redact(text);
    }

    /** Properties whose values must never appear in logs. */
    static boolean isSecretProperty(String prop) {
        String p = prop.toLowerCase(Locale.ROOT);
        if (p.contains("password")
                || p.contains("passphrase")
                || p.contains("jaas")
                || p.endsWith(".key")
                || p.contains("secret")
                || p.contains("credential")
                || p.contains("token")) {
            return true;
        }
        var key = ProducerConfig.configDef().configKeys().get(prop);
        return key != null && key.type == ConfigDef.Type.PASSWORD;
    }

    private static String groupTitle(Group g) {
        return switch (g) {
            case DATABASE -> "PostgreSQL";
            case KAFKA -> "Kafka";
            case RELAY -> "Relay";
            case PROCESS -> "Process";
        };
    }

    static List<String> wrap(String text, int width) {
        List<String> lines = new ArrayList<>();
        StringBuilder line = new StringBuilder();
        for (String word : text.split(" ")) {
            if (line.length() > 0 && line.length() + 1 + word.length() > width) {
                lines.add(line.toString());
                line.setLength(0);
            }
            line.append(line.isEmpty() ? "" : " ").append(word);
        }
        if (!line.isEmpty()) {
            lines.add(line.toString());
        }
        return lines;
    }
}
