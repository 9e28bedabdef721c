package dev.outbox.relay.process;

import static dev.outbox.relay.process.RelaySettings.ALL;
import static dev.outbox.relay.process.RelaySettings.KAFKA_ENV_PREFIX;
import static dev.outbox.relay.process.RelaySettings.KAFKA_PREFIX;

import dev.outbox.core.internal.NearestName;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.apache.kafka.clients.producer.ProducerConfig;

/** Unknown names: the error for a flag, variable, file key or producer property, with the likely intended name. */
final class SettingNames {

    private SettingNames() {}

    /** @return the error for an unknown flag {@code --name}, suggesting the nearest option or setting */
    static CliException unknownFlag(String name) {
        Set<String> known = new TreeSet<>(flagNames());
        for (String option : List.of("help", "config", "migrate", "json", "limit", "id", "all", "yes")) {
            known.add("--" + option);
        }
        return unknown("flag", "--" + name, "--" + name, known);
    }

    static CliException unknown(String kind, String shown, String name, Set<String> known) {
        return CliException.usage("Unknown setting " + shown + " (" + kind + ")" + didYouMean(name, known, ".")
                + " See --help for every setting.");
    }

    /** @return {@code prop} when it is a producer property, else the error naming the nearest one */
    static String producerProperty(String prop, String shown, String kind, Set<String> knownShown) {
        if (ProducerConfig.configNames().contains(prop)) {
            return prop;
        }
        throw CliException.usage(
                "Unknown Kafka producer property " + shown + " (" + kind + ")" + didYouMean(shown, knownShown, ".")
                        + " Only producer properties (see the Kafka documentation) pass through.");
    }

    /** @return the producer property an {@code OUTBOX_RELAY_KAFKA_*} variable names, else the error */
    static String producerPropertyFromEnv(String var) {
        String suffix = var.substring(KAFKA_ENV_PREFIX.length());
        for (String prop : ProducerConfig.configNames()) {
            if (envSuffix(prop).equals(suffix)) {
                return prop;
            }
        }
        throw CliException.usage(
                "Unknown Kafka producer property in environment variable " + var + didYouMean(var, envKafkaNames(), ".")
                        + " Only producer properties pass through, written in upper case with _ for . (OUTBOX_RELAY_KAFKA_LINGER_MS).");
    }

    private static String didYouMean(String name, Set<String> known, String otherwise) {
        String nearest = NearestName.nearest(name, known);
        return nearest != null ? ": did you mean " + nearest + "?" : otherwise;
    }

    private static String envSuffix(String prop) {
        return prop.toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_');
    }

    static Set<String> flagNames() {
        return names(ALL.stream().map(Setting::flag).toList(), Function.identity());
    }

    static Set<String> envVars() {
        return names(ALL.stream().map(Setting::envVar).toList(), Function.identity());
    }

    static Set<String> fileKeys() {
        return names(ALL.stream().map(Setting::fileKey).toList(), Function.identity());
    }

    static Set<String> flagKafkaNames() {
        return names(ProducerConfig.configNames(), p -> "--" + KAFKA_PREFIX + p);
    }

    static Set<String> fileKafkaNames() {
        return names(ProducerConfig.configNames(), p -> KAFKA_PREFIX + p);
    }

    static Set<String> envKafkaNames() {
        return names(ProducerConfig.configNames(), p -> KAFKA_ENV_PREFIX + envSuffix(p));
    }

    private static Set<String> names(Collection<String> names, Function<String, String> spelling) {
        return names.stream().map(spelling).collect(Collectors.toCollection(TreeSet::new));
    }
}
