package dev.outbox.relay.process;

import dev.outbox.core.internal.NearestName;
import dev.outbox.relay.admin.RelayAdmin;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The parsed command line: the command, its options, and the setting flags (handed to {@link
 * RelaySettings} as they are).
 *
 * @param command what to do
 * @param settings setting flags without {@code --}, in order, the last of a repeated flag winning
 * @param config the {@code --config} file, or {@code null}; never empty or blank (refused)
 * @param help whether {@code --help} was given
 * @param migrate whether {@code --migrate} was given
 * @param json whether {@code --json} was given
 * @param limit {@code --limit}, or {@code null}
 * @param ids {@code --id} values
 * @param all whether {@code --all} was given
 * @param yes whether {@code --yes} was given
 * @param expect {@code --expect}, the review of the parked rows {@code parked purge --all --yes} may delete
 *     ({@code COUNT:FINGERPRINT}, as its dry run printed it), or {@code null}
 */
record CommandLine(
        Command command,
        Map<String, String> settings,
        String config,
        boolean help,
        boolean migrate,
        boolean json,
        Integer limit,
        List<Long> ids,
        boolean all,
        boolean yes,
        String expect) {

    /** The commands. */
    enum Command {
        RUN("run"),
        STATUS("status"),
        PARKED_LIST("parked list"),
        PARKED_REQUEUE("parked requeue"),
        PARKED_PURGE("parked purge"),
        DOCTOR("doctor");

        final String words;

        Command(String words) {
            this.words = words;
        }

        boolean isAdmin() {
            return this != RUN;
        }
    }

    private static final Set<String> COMMAND_OPTIONS =
            Set.of("help", "config", "migrate", "json", "limit", "id", "all", "yes", "expect");

    /**
     * @param args the arguments
     * @return the command line
     * @throws CliException with exit code 2 when an argument is malformed, unknown, or does not fit
     *     the command
     */
    static CommandLine parse(String[] args) {
        List<String> words = new ArrayList<>();
        Map<String, String> settings = new LinkedHashMap<>();
        String config = null;
        boolean help = false;
        boolean migrate = false;
        boolean json = false;
        Integer limit = null;
        List<Long> ids = new ArrayList<>();
        boolean all = false;
        boolean yes = false;
        String expect = null;
        Set<String> given = new TreeSet<>();

        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("-h")) {
                help = true;
                continue;
            }
            if (!arg.startsWith("--")) {
                if (arg.startsWith("-") && arg.length() > 1) {
                    throw CliException.usage(
                            "Unknown option " + arg + ": options start with --, e.g. --batch-size=500. See --help.");
                }
                words.add(arg);
                continue;
            }
            String body = arg.substring(2);
            int eq = body.indexOf('=');
            String name = eq < 0 ? body : body.substring(0, eq);
            String value = eq < 0 ? null : body.substring(eq + 1);
            if (name.isEmpty()) {
                throw CliException.usage("Malformed option " + arg + ": write --name=value. See --help.");
            }
            if (COMMAND_OPTIONS.contains(name)) {
                given.add(name);
                switch (name) {
                    case "help" -> help = true;
                    case "migrate" -> migrate = flagOnly(name, value);
                    case "json" -> json = flagOnly(name, value);
                    case "all" -> all = flagOnly(name, value);
                    case "yes" -> yes = flagOnly(name, value);
                    case "config" -> {
                        if (value == null) {
                            value = next(args, ++i, name);
                        }
                        if (value.isBlank()) {
                            throw CliException.usage("Option --config needs the path of a properties file, got"
                                    + " an empty one: write --config=<file>, e.g. --config=relay.properties, or drop"
                                    + " --config to take the settings from flags and the environment only.");
                        }
                        config = value;
                    }
                    case "expect" -> {
                        if (value == null) {
                            value = next(args, ++i, name);
                        }
                        expect = value.trim();
                        if (!RelayAdmin.REVIEW.matcher(expect).matches()) {
                            throw CliException.usage("Invalid value " + value
                                    + " for option --expect: must be what the dry run of parked purge --all"
                                    + " printed, COUNT:FINGERPRINT (e.g. --expect=3:9f86d081884c7d65): the count"
                                    + " of the parked messages it showed and which they were");
                        }
                    }
                    case "limit" -> {
                        if (value == null) {
                            value = next(args, ++i, name);
                        }
                        try {
                            limit = Validators.intBetween(value, 1, RelayAdmin.MAX_LIMIT);
                        } catch (IllegalArgumentException e) {
                            throw CliException.usage(
                                    "Invalid value " + value + " for option --limit: " + e.getMessage());
                        }
                    }
                    case "id" -> {
                        if (value == null) {
                            value = next(args, ++i, name);
                        }
                        for (String part : value.split(",")) {
                            try {
                                long id = Long.parseLong(part.trim());
                                if (id < 1) {
                                    throw new NumberFormatException();
                                }
                                ids.add(id);
                            } catch (NumberFormatException e) {
                                throw CliException.usage(
                                        "Invalid value " + part
                                                + " for option --id: must be an outbox id (a positive whole number) as shown by parked list");
                            }
                        }
                    }
                    default -> throw new IllegalStateException(name);
                }
                continue;
            }
            boolean known = name.startsWith(RelaySettings.KAFKA_PREFIX)
                    || RelaySettings.byName(name).isPresent();
            if (!known) {
                throw SettingNames.unknownFlag(name);
            }
            if (value == null) {
                value = next(args, ++i, name);
            }
            settings.put(name, value);
        }

        Command command = command(words);
        check(command, given, migrate, json, limit, ids, all, yes, expect);
        return new CommandLine(
                command, settings, config, help, migrate, json, limit, List.copyOf(ids), all, yes, expect);
    }

    private static boolean flagOnly(String name, String value) {
        if (value != null) {
            throw CliException.usage(
                    "Option --" + name + " takes no value, got --" + name + "=" + value + ". See --help.");
        }
        return true;
    }

    private static String next(String[] args, int i, String name) {
        if (i >= args.length || args[i].startsWith("--")) {
            throw CliException.usage("Option --" + name + " needs a value: write --" + name + "=<value>. See --help.");
        }
        return args[i];
    }

    private static Command command(List<String> words) {
        String joined = String.join(" ", words);
        return switch (joined) {
            case "", "run" -> Command.RUN;
            case "status" -> Command.STATUS;
            case "parked", "parked list" -> Command.PARKED_LIST;
            case "parked requeue" -> Command.PARKED_REQUEUE;
            case "parked purge" -> Command.PARKED_PURGE;
            case "doctor" -> Command.DOCTOR;
            default -> {
                String nearest = NearestName.nearest(
                        joined, Set.of("run", "status", "parked list", "parked requeue", "parked purge", "doctor"));
                throw CliException.usage(
                        "Unknown command '" + joined + "'"
                                + (nearest != null ? ": did you mean '" + nearest + "'?" : ":")
                                + " commands are run (the default), status, parked list, parked requeue, parked purge, doctor. See --help.");
            }
        };
    }

    private static void check(
            Command command,
            Set<String> given,
            boolean migrate,
            boolean json,
            Integer limit,
            List<Long> ids,
            boolean all,
            boolean yes,
            String expect) {
        Map<String, Set<Command>> allowed = Map.of(
                "migrate", Set.of(Command.RUN),
                "json", Set.of(Command.STATUS, Command.PARKED_LIST, Command.DOCTOR),
                "limit", Set.of(Command.PARKED_LIST),
                "id", Set.of(Command.PARKED_REQUEUE, Command.PARKED_PURGE),
                "all", Set.of(Command.PARKED_REQUEUE, Command.PARKED_PURGE),
                "yes", Set.of(Command.PARKED_PURGE),
                "expect", Set.of(Command.PARKED_PURGE));
        for (String option : given) {
            Set<Command> ok = allowed.get(option);
            if (ok != null && !ok.contains(command)) {
                throw CliException.usage("Option --" + option + " does not apply to " + command.words
                        + "; it applies to "
                        + String.join(
                                ", ", ok.stream().map(c -> c.words).sorted().toList()) + ". See --help.");
            }
        }
        if (command == Command.PARKED_REQUEUE || command == Command.PARKED_PURGE) {
            if (all && !ids.isEmpty()) {
                throw CliException.usage(
                        "Options --all and --id exclude each other in " + command.words + ": give one of them.");
            }
            if (!all && ids.isEmpty()) {
                throw CliException.usage(
                        command.words
                                + " needs --all or --id <outbox id> (repeatable, or comma-separated); see parked list for the ids.");
            }
        }
        if (command == Command.PARKED_PURGE) {
            if (expect != null && !all) {
                throw CliException.usage("Option --expect goes with --all: the ids of --id are what is purged.");
            }
            if (all && yes && expect == null) {
                throw CliException.usage("parked purge --all --yes deletes every parked message for good: add"
                        + " --expect=<COUNT:FINGERPRINT>, what its dry run (without --yes) printed, so that no"
                        + " message is deleted unseen.");
            }
        }
    }
}
