package dev.outbox.relay.process;

import dev.outbox.core.internal.Durations;
import dev.outbox.relay.admin.Doctor;
import java.io.PrintStream;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import javax.sql.DataSource;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * The {@code doctor} command: the text (or JSON) face of {@link Doctor}. Its own options are taken
 * out of the arguments before the common parser sees them, so they cannot reach other commands.
 */
final class DoctorCommand {
    /** Exit code when a check failed. */
    static final int CHECK_FAILED = 4;

    private static final Duration LONGEST = Duration.ofDays(3650);

    /**
     * The doctor's own options.
     *
     * @param rest the arguments left for {@link CommandLine#parse}
     * @param apply what the options set on the doctor's builder
     */
    record Options(String[] rest, List<Consumer<Doctor.Builder>> apply) {

        /**
         * @param args the whole command line
         * @return the options; none when the command is not {@code doctor}
         * @throws CliException exit code 2 for a malformed value
         */
        static Options extract(String[] args) {
            if (!List.of(args).contains("doctor")) {
                return new Options(args, List.of());
            }
            List<String> rest = new ArrayList<>();
            List<Consumer<Doctor.Builder>> apply = new ArrayList<>();
            Map<String, BiConsumer<String, List<Consumer<Doctor.Builder>>>> options = new LinkedHashMap<>();
            options.put("consumer", (v, a) -> {
                String[] kv = pair("consumer", v, "NAME=TOPIC[,TOPIC...]");
                String[] topics = kv[1].split(",");
                a.add(b -> b.consumer(kv[0], topics));
            });
            options.put("topic", (v, a) -> {
                String[] topics = v.split(",");
                a.add(b -> b.topics(topics));
            });
            options.put("consumer-retention", (v, a) -> {
                String[] kv = pair("consumer-retention", v, "NAME=DURATION");
                Duration d = duration("consumer-retention", kv[1]);
                a.add(b -> b.consumerRetention(kv[0], d));
            });
            Map<String, BiConsumer<Doctor.Builder, Duration>> durations = Map.of(
                    "processed-retention", Doctor.Builder::processedRetention,
                    "key-ttl", Doctor.Builder::keyTtl,
                    "lock-timeout", Doctor.Builder::lockTimeout,
                    "purge-grace", Doctor.Builder::purgeGrace,
                    "max-unpublished-age", Doctor.Builder::maxUnpublishedAge);
            durations.forEach((name, setter) -> options.put(name, (v, a) -> {
                Duration d = duration(name, v);
                a.add(b -> setter.accept(b, d));
            }));
            for (int i = 0; i < args.length; i++) {
                String arg = args[i];
                String body = arg.startsWith("--") ? arg.substring(2) : "";
                int eq = body.indexOf('=');
                String name = eq < 0 ? body : body.substring(0, eq);
                var option = options.get(name);
                if (option == null) {
                    rest.add(arg);
                    continue;
                }
                String value = eq < 0 ? null : body.substring(eq + 1);
                if (value == null) {
                    if (i + 1 >= args.length || args[i + 1].startsWith("--")) {
                        throw CliException.usage(
                                "Option --" + name + " needs a value: write --" + name + "=<value>. See --help.");
                    }
                    value = args[++i];
                }
                option.accept(value, apply);
            }
            return new Options(rest.toArray(String[]::new), List.copyOf(apply));
        }

        private static String[] pair(String option, String value, String form) {
            int eq = value.indexOf('=');
            if (eq <= 0 || eq == value.length() - 1) {
                throw CliException.usage("Invalid value " + value + " for option --" + option + ": write " + form
                        + ", e.g. --" + option + "=payments=" + (form.endsWith("DURATION") ? "7d" : "orders") + ".");
            }
            return new String[] {
                value.substring(0, eq).strip(), value.substring(eq + 1).strip()
            };
        }

        private static Duration duration(String option, String value) {
            try {
                return Validators.durationBetween(value.strip(), Duration.ofMillis(1), LONGEST);
            } catch (IllegalArgumentException e) {
                throw CliException.usage(
                        "Invalid value " + value + " for option --" + option + ": " + e.getMessage() + ".");
            }
        }
    }

    private final RelaySettings.Values settings;
    private final Options options;
    private final PrintStream out;
    // the Kafka admin client's properties, or null when bootstrap-servers is absent or empty
    private final Map<String, Object> kafka;
    private final Duration kafkaTimeout;

    /**
     * Reads what the doctor takes from the settings, before anything is contacted.
     *
     * @throws CliException exit code 2 for a setting the doctor cannot use (see {@link
     *     #kafkaTimeout(Map)})
     */
    DoctorCommand(RelaySettings.Values settings, Options options, PrintStream out) {
        this.settings = settings;
        this.options = options;
        this.out = out;
        String servers = settings.string(RelaySettings.BOOTSTRAP_SERVERS);
        // given but empty (OUTBOX_RELAY_BOOTSTRAP_SERVERS= in a manifest) is not given: the Kafka checks are skipped
        if (settings.isExplicit(RelaySettings.BOOTSTRAP_SERVERS) && servers != null && !servers.isBlank()) {
            Map<String, Object> props = new LinkedHashMap<>();
            settings.producerProperties().forEach((k, v) -> {
                if (AdminClientConfig.configNames().contains(k)) {
                    props.put(k, v);
                }
            });
            props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, servers);
            this.kafka = props;
            this.kafkaTimeout = kafkaTimeout(settings.producerProperties());
        } else {
            this.kafka = null;
            this.kafkaTimeout = null;
        }
    }

    /**
     * @param producer the pass-through producer properties, already checked by Kafka's own definitions
     *     (a whole number of milliseconds, 0 or more)
     * @return the doctor's Kafka timeout, which bounds each of its Kafka requests and replaces the admin
     *     client's {@code request.timeout.ms}: the configured {@code request.timeout.ms} when one is given
     *     (a user who gave a slow cluster longer gets as long from the doctor, one who gave it less is not
     *     kept waiting longer), else {@link Doctor.Builder#DEFAULT_KAFKA_TIMEOUT}
     * @throws CliException exit code 2 when {@code request.timeout.ms} is 0: every request would time out
     *     at once
     */
    private static Duration kafkaTimeout(Map<String, String> producer) {
        String given = producer.get(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG);
        if (given == null) {
            return Doctor.Builder.DEFAULT_KAFKA_TIMEOUT;
        }
        long ms = Long.parseLong(given.strip());
        if (ms < 1) {
            throw CliException.usage("Invalid value " + given + " for Kafka property "
                    + AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG + " (flag --" + RelaySettings.KAFKA_PREFIX
                    + AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG + ", " + RelaySettings.KAFKA_ENV_PREFIX
                    + "REQUEST_TIMEOUT_MS or file key " + RelaySettings.KAFKA_PREFIX
                    + AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG + "): the doctor bounds each Kafka request by it, and"
                    + " with 0 every request would time out at once; give it in milliseconds, e.g. 30000, or remove it"
                    + " (the doctor then waits " + Durations.format(Doctor.Builder.DEFAULT_KAFKA_TIMEOUT) + ").");
        }
        return Duration.ofMillis(ms);
    }

    int run(DataSource dataSource, boolean json) {
        Doctor.Builder b = Doctor.builder().dataSource(dataSource).schema(settings.string(RelaySettings.SCHEMA));
        if (kafka != null) {
            b.kafkaProperties(kafka).kafkaTimeout(kafkaTimeout);
        }
        try {
            options.apply().forEach(o -> o.accept(b));
        } catch (IllegalArgumentException e) {
            throw CliException.usage("Invalid doctor option: " + e.getMessage());
        }
        Doctor.Report report = b.build().run();
        if (json) {
            out.println(Json.write(report));
        } else {
            print(report);
        }
        return report.failed() ? CHECK_FAILED : Main.EXIT_OK;
    }

    private void print(Doctor.Report report) {
        out.println("Idempotency doctor, schema " + report.schema() + ", at "
                + report.at().truncatedTo(ChronoUnit.SECONDS) + " (database clock)");
        out.println();
        for (Doctor.Check c : report.checks()) {
            String verdict = c.verdict() == Doctor.Verdict.BUILD_TIME
                    ? "BUILD"
                    : c.verdict().name();
            out.printf("%-5s %-19s %s%n", verdict, c.id(), c.title());
            out.println("      " + c.summary());
            for (String e : c.evidence()) {
                out.println("        " + e);
            }
            if (c.fix() != null && c.verdict() != Doctor.Verdict.PASS) {
                out.println("      fix: " + c.fix());
            }
        }
        long failed = report.checks().stream()
                .filter(c -> c.verdict() == Doctor.Verdict.FAIL)
                .count();
        long warned = report.checks().stream()
                .filter(c -> c.verdict() == Doctor.Verdict.WARN)
                .count();
        out.println();
        out.println(
                failed == 0
                        ? "No check failed" + (warned > 0 ? ", " + warned + " warning(s)." : ".")
                        : failed + " check(s) failed" + (warned > 0 ? ", " + warned + " warning(s)" : "") + ".");
    }
}
