package dev.outbox.relay.admin;

import static dev.outbox.core.internal.Durations.format;
import static dev.outbox.core.internal.Durations.roughly;
import static dev.outbox.relay.admin.Intervals.interval;
import static dev.outbox.relay.admin.Intervals.seconds;

import dev.outbox.relay.admin.Doctor.Check;
import dev.outbox.relay.admin.Doctor.Verdict;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code commit-waits} check: no commit waits forever for synchronous replication. With {@code
 * synchronous_standby_names} set, a commit made with {@code synchronous_commit} {@code remote_write},
 * {@code on} or {@code remote_apply} is not visible to anyone (the relay included) and does not return
 * to its producer until enough synchronous senders have reported the commit written, flushed or
 * replayed. It waits forever when no connected sender matches the names (the standby is down, or
 * named wrongly), when fewer are connected than the names ask for, or when a synchronous sender never
 * reports the position the level needs: a WAL receiver such as {@code pg_receivewal} replays nothing,
 * so under {@code remote_apply} every commit hangs, and without {@code --synchronous} it reports no
 * flushed position either and is never synchronous. Producers' transactions and the relay's own writes
 * then stall.
 *
 * <p>Two ways to see it: sessions waiting in their commit now ({@code pg_stat_activity}, wait event
 * {@code IPC}/{@code SyncRep}) for longer than {@link #LONG_WAIT}, and the configuration that makes
 * commits hang before any is waiting: the server's {@code synchronous_standby_names} (its {@code FIRST}
 * or {@code ANY} count), the {@code synchronous_commit} of this database and of every role that sets its
 * own, and the senders in {@code pg_stat_replication} that the server counts as synchronous ({@code
 * sync} or {@code quorum}), with the positions each reports. Both are a {@link Verdict#FAIL}: a commit
 * that waits forever is no production-only risk but a stalled application, on a test database too. A
 * session that sets {@code synchronous_commit} itself is seen only once it waits; a doctor's role
 * without {@code pg_read_all_stats} sees neither other roles' waits nor the senders' state, and warns
 * instead of passing.
 */
final class CommitWaitCheck {
    static final String TITLE = "No commit waits forever for synchronous replication";

    /**
     * How long a session must have waited in its commit to fail the check: a healthy synchronous standby
     * confirms within a network round trip and a flush (milliseconds), so waits that short are replication
     * at work and only listed; one this long is a standby that does not confirm, or whose replay is held
     * back.
     */
    static final Duration LONG_WAIT = Duration.ofSeconds(5);

    private static final String ID = "commit-waits";

    /** {@code [FIRST|ANY] n (names)}; a plain list of names is {@code FIRST 1} */
    private static final Pattern COUNTED = Pattern.compile(
            "\\s*(?:(first|any)\\s+)?([0-9]{1,9})\\s*\\(.*\\)\\s*", Pattern.CASE_INSENSITIVE | Pattern.DOTALL);

    /** The {@code synchronous_commit} levels that wait for synchronous senders, by the position they need. */
    enum Level {
        REMOTE_WRITE("remote_write", "written"),
        ON("on", "flushed"),
        REMOTE_APPLY("remote_apply", "replayed");

        private final String setting;
        private final String position;

        Level(String setting, String position) {
            this.setting = setting;
            this.position = position;
        }

        /**
         * @param value a {@code synchronous_commit} as PostgreSQL shows it or keeps it in a role's settings
         *     (as written: {@code true}, {@code yes} and {@code 1} are {@code on})
         * @return its level, or null for one that waits for no standby ({@code local}, {@code off} and its
         *     spellings)
         */
        static Level of(String value) {
            return switch (value.strip().toLowerCase(Locale.ROOT)) {
                case "on", "true", "yes", "1" -> ON;
                case "remote_write" -> REMOTE_WRITE;
                case "remote_apply" -> REMOTE_APPLY;
                default -> null;
            };
        }
    }

    /**
     * A WAL sender as {@code pg_stat_replication} shows it.
     *
     * @param syncState {@code sync}, {@code quorum}, {@code potential} or {@code async}; null when the
     *     doctor's role may not read it
     */
    record Sender(
            int pid, String name, String state, String syncState, boolean written, boolean flushed, boolean replayed) {
        boolean readable() {
            return syncState != null;
        }

        /** @return whether the server waits for it: it was chosen ({@code sync}) or is in the quorum */
        boolean synchronous() {
            return "sync".equals(syncState) || "quorum".equals(syncState);
        }

        boolean reports(Level level) {
            return switch (level) {
                case REMOTE_WRITE -> written;
                case ON -> flushed;
                case REMOTE_APPLY -> replayed;
            };
        }

        String describe() {
            if (!readable()) {
                return "sender " + name + " (pid " + pid + "): its state is not readable";
            }
            List<String> positions = new ArrayList<>();
            if (written) {
                positions.add("written");
            }
            if (flushed) {
                positions.add("flushed");
            }
            if (replayed) {
                positions.add("replayed");
            }
            String reported = positions.isEmpty() ? "reports no position" : "reports " + String.join(", ", positions);
            if (written && !replayed) {
                reported += flushed
                        ? "; no replayed position (a WAL receiver such as pg_receivewal replays nothing)"
                        : "; no flushed position (a WAL receiver such as pg_receivewal without --synchronous:"
                                + " never synchronous)";
            }
            return "sender " + name + " (pid " + pid + "): " + state + ", " + syncState + "; " + reported;
        }
    }

    /**
     * What {@code synchronous_standby_names} asks for.
     *
     * @param quorum {@code ANY n}: any n of the named senders; else {@code FIRST n}, the n of highest priority
     * @param count n
     */
    record Names(boolean quorum, int count) {
        static Names parse(String names) {
            Matcher m = COUNTED.matcher(names);
            if (!m.matches()) {
                return new Names(false, 1);
            }
            return new Names("any".equalsIgnoreCase(m.group(1)), Integer.parseInt(m.group(2)));
        }

        @Override
        public String toString() {
            return (quorum ? "ANY " : "FIRST ") + count;
        }
    }

    Check check(Connection c) throws SQLException {
        String title = TITLE;
        List<String> evidence = new ArrayList<>();
        boolean standby;
        String names;
        try (PreparedStatement st =
                        c.prepareStatement("select pg_is_in_recovery(), current_setting('synchronous_standby_names')");
                ResultSet rs = st.executeQuery()) {
            rs.next();
            standby = rs.getBoolean(1);
            names = rs.getString(2);
        }
        if (standby) {
            return new Check(
                    ID,
                    title,
                    Verdict.PASS,
                    "this server is a standby: it takes no commits",
                    List.of("pg_is_in_recovery() = true"),
                    null);
        }
        evidence.add("synchronous_standby_names = '" + names + "'"
                + (names.isBlank()
                        ? ""
                        : " (" + Names.parse(names) + ": a commit waits for that many of the named senders)"));

        // sessions waiting in their commit now; state_change is when their current statement (the COMMIT, or an
        // autocommit statement) began: the wait started within it, while xact_start would add all of the
        // transaction's work before it. Other roles' sessions show no wait to a role without pg_read_all_stats
        int waiting;
        int longWaits;
        double longest;
        String who;
        String longWho;
        int hidden;
        try (PreparedStatement st = c.prepareStatement("select"
                + " count(*) filter (where wait_event_type = 'IPC' and wait_event = 'SyncRep'),"
                + " count(*) filter (where wait_event_type = 'IPC' and wait_event = 'SyncRep'"
                + " and state_change < clock_timestamp() - ?::interval),"
                + " max(extract(epoch from clock_timestamp() - state_change))"
                + " filter (where wait_event_type = 'IPC' and wait_event = 'SyncRep'),"
                + " coalesce(string_agg(distinct coalesce(usename, '?') || ' (' || coalesce(application_name, '') || ')', ', ')"
                + " filter (where wait_event_type = 'IPC' and wait_event = 'SyncRep'), ''),"
                + " coalesce(string_agg(distinct coalesce(usename, '?') || ' (' || coalesce(application_name, '') || ')', ', ')"
                + " filter (where wait_event_type = 'IPC' and wait_event = 'SyncRep'"
                + " and state_change < clock_timestamp() - ?::interval), ''),"
                + " count(*) filter (where backend_type is null and datid is not null)"
                + " from pg_stat_activity where pid <> pg_backend_pid()")) {
            st.setString(1, interval(LONG_WAIT));
            st.setString(2, interval(LONG_WAIT));
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                waiting = rs.getInt(1);
                longWaits = rs.getInt(2);
                longest = rs.getDouble(3);
                who = rs.getString(4);
                longWho = rs.getString(5);
                hidden = rs.getInt(6);
            }
        }
        if (waiting > 0) {
            evidence.add(waiting + " session(s) waiting in their commit for synchronous replication, the longest for "
                    + format(roughly(seconds(longest))) + " (since its statement began): " + who);
            try (PreparedStatement st = c.prepareStatement("select pid, usename, application_name,"
                            + " extract(epoch from clock_timestamp() - state_change),"
                            + " left(regexp_replace(query, '\\s+', ' ', 'g'), 120)"
                            + " from pg_stat_activity where wait_event_type = 'IPC' and wait_event = 'SyncRep'"
                            + " and pid <> pg_backend_pid() order by state_change limit 5");
                    ResultSet rs = st.executeQuery()) {
                while (rs.next()) {
                    evidence.add("waiting for " + format(roughly(seconds(rs.getDouble(4)))) + ": pid " + rs.getInt(1)
                            + " " + rs.getString(2) + " (" + rs.getString(3) + "): " + rs.getString(5));
                }
            }
            if (waiting > 5) {
                evidence.add("...");
            }
        }
        if (names.isBlank() && longWaits == 0) {
            return new Check(
                    ID,
                    title,
                    Verdict.PASS,
                    "synchronous_standby_names is empty: no commit waits for a standby",
                    evidence,
                    null);
        }
        if (hidden > 0) {
            evidence.add(hidden + " session(s) of other roles whose waits the doctor's role cannot see (it needs"
                    + " pg_read_all_stats)");
        }

        // the levels commits are made with: this database's for the doctor's role, and every role's own
        Map<Level, List<String>> levels = new EnumMap<>(Level.class);
        try (PreparedStatement st =
                        c.prepareStatement("select setting from pg_settings where name = 'synchronous_commit'");
                ResultSet rs = st.executeQuery()) {
            rs.next();
            String value = rs.getString(1);
            use(levels, evidence, value, "this database, the doctor's role");
        }
        for (DurabilityChecks.RoleSetting r : DurabilityChecks.synchronousCommitOfRoles(c)) {
            use(levels, evidence, r.value(), "role " + r.role() + " in " + r.database());
        }

        List<Sender> senders = new ArrayList<>();
        try (PreparedStatement st = c.prepareStatement("select pid, application_name, state, sync_state,"
                        + " write_lsn is not null, flush_lsn is not null, replay_lsn is not null"
                        + " from pg_stat_replication order by application_name, pid");
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                String name = rs.getString(2);
                senders.add(new Sender(
                        rs.getInt(1),
                        name == null || name.isEmpty() ? "without application_name" : name,
                        rs.getString(3),
                        rs.getString(4),
                        rs.getBoolean(5),
                        rs.getBoolean(6),
                        rs.getBoolean(7)));
            }
        }
        if (senders.isEmpty()) {
            evidence.add("no WAL sender is connected");
        }
        senders.stream().limit(10).forEach(s -> evidence.add(s.describe()));
        if (senders.size() > 10) {
            evidence.add("...");
        }

        // what each level in use waits for, when the names are set
        List<String> hangs = new ArrayList<>();
        boolean unreadable = senders.stream().anyMatch(s -> !s.readable());
        if (!names.isBlank() && (senders.isEmpty() || !unreadable)) {
            Names asked = Names.parse(names);
            levels.forEach((level, users) -> {
                String why = hangs(level, asked, senders);
                if (why != null) {
                    hangs.add("synchronous_commit = " + level.setting + " (" + String.join(", ", users) + "): " + why);
                }
            });
        }
        hangs.forEach(h -> evidence.add("commits hang: " + h));

        if (longWaits > 0 || !hangs.isEmpty()) {
            List<String> found = new ArrayList<>();
            if (longWaits > 0) {
                found.add(longWaits + " session(s) waiting " + format(LONG_WAIT) + " or longer for synchronous"
                        + " replication, the longest for " + format(roughly(seconds(longest))) + " (" + longWho + ")");
            }
            if (!hangs.isEmpty()) {
                found.add("commits wait forever: " + String.join("; ", hangs));
            }
            return new Check(
                    ID,
                    title,
                    Verdict.FAIL,
                    String.join("; ", found) + ". Producers' transactions and the relay's own writes stall",
                    evidence,
                    "Bring the synchronous standby back, or correct synchronous_standby_names (now '" + names
                            + "') to the application_name of standbys that are connected. A WAL receiver such as"
                            + " pg_receivewal replays nothing: do not name it as a synchronous standby while commits use"
                            + " remote_apply (and without --synchronous it is never synchronous). To release the"
                            + " commits waiting now: ALTER SYSTEM SET synchronous_standby_names = ''; SELECT"
                            + " pg_reload_conf(); (commits then wait for no standby: database-durability warns about"
                            + " failing over), or lower synchronous_commit, for the server or the roles named (ALTER ROLE"
                            + " r SET synchronous_commit = on, or local), to what the connected synchronous senders"
                            + " report (it applies to commits after it). Cancelling a waiting session does not undo its"
                            + " commit: it is already committed on this server.");
        }
        if (levels.isEmpty()) {
            return new Check(
                    ID,
                    title,
                    Verdict.PASS,
                    "synchronous_commit is local or off for this database and every role that sets it: no commit waits"
                            + " for a standby",
                    evidence,
                    null);
        }
        if (unreadable || hidden > 0) {
            return new Check(
                    ID,
                    title,
                    Verdict.WARN,
                    unreadable
                            ? "synchronous_standby_names is set, and whether the senders can confirm the commits is not"
                                    + " readable: commits may be waiting forever"
                            : "the synchronous senders confirm every synchronous_commit in use, but whether other roles'"
                                    + " sessions are waiting in their commits is not readable",
                    evidence,
                    "Grant pg_read_all_stats to the doctor's role (or run it as a role that has it), so that it reads"
                            + " the senders' sync state and the sessions' waits.");
        }
        return new Check(
                ID,
                title,
                Verdict.PASS,
                "the synchronous senders confirm what every synchronous_commit in use waits for",
                evidence,
                null);
    }

    /** Adds {@code value}, set for {@code where}, to the evidence and, when it waits for standbys, to {@code levels}. */
    private static void use(Map<Level, List<String>> levels, List<String> evidence, String value, String where) {
        Level level = Level.of(value);
        evidence.add("synchronous_commit = " + value + " (" + where + ")"
                + (level == null
                        ? ": waits for no standby"
                        : ": waits until the standbys report it " + level.position));
        if (level != null) {
            levels.computeIfAbsent(level, l -> new ArrayList<>()).add(where);
        }
    }

    /**
     * @return why a commit made at {@code level} waits forever with these senders, or null when enough of
     *     them confirm it. With {@code FIRST n} the server chooses the n connected senders of highest
     *     priority (state {@code sync}) and waits for each of them, and for n in all; with {@code ANY n}, for
     *     any n of those in state {@code quorum}. A sender that reports no flushed position, or is not yet
     *     streaming, is never chosen: it shows as {@code async} or {@code potential}
     */
    static String hangs(Level level, Names asked, List<Sender> senders) {
        List<Sender> synchronous = senders.stream().filter(Sender::synchronous).toList();
        List<Sender> unable =
                synchronous.stream().filter(s -> !s.reports(level)).toList();
        int able = synchronous.size() - unable.size();
        if (senders.isEmpty()) {
            return "no WAL sender is connected, and " + asked + " must confirm";
        }
        if (synchronous.isEmpty()) {
            return "no connected sender is synchronous (none matches the names, or none reports a flushed position),"
                    + " and " + asked + " must confirm";
        }
        String names =
                String.join(", ", unable.stream().map(Sender::name).distinct().toList());
        if (!asked.quorum()) {
            if (synchronous.size() < asked.count()) {
                return "only " + synchronous.size() + " synchronous sender(s) connected of the " + asked.count()
                        + " the names ask for";
            }
            if (!unable.isEmpty()) {
                return "the synchronous sender(s) " + names + " report no " + level.position + " position, and the"
                        + " server waits for each one it chose";
            }
            return null;
        }
        if (able < asked.count()) {
            return able + " of the " + synchronous.size() + " quorum sender(s) report a " + level.position
                    + " position, and " + asked.count() + " must" + (unable.isEmpty() ? "" : " (not " + names + ")");
        }
        return null;
    }
}
