package dev.outbox.relay.process;

import dev.outbox.core.internal.Durations;
import dev.outbox.relay.admin.ParkedChange;
import dev.outbox.relay.admin.ParkedMessage;
import dev.outbox.relay.admin.RelayAdmin;
import dev.outbox.relay.admin.RelayMember;
import dev.outbox.relay.admin.RelayStatus;
import dev.outbox.relay.admin.ShardStatus;
import dev.outbox.relay.admin.ShardsWithoutLeaseRow;
import dev.outbox.relay.admin.XminHolder;
import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;

/** The text (or JSON) face of {@link RelayAdmin} for the {@code status} and {@code parked} commands. */
final class AdminCommands {
    /** Rows {@code parked list} shows without {@code --limit}. */
    static final int DEFAULT_LIMIT = 50;

    /** The most parked rows a dry run of {@code parked purge} lists; it counts them all. */
    static final int PURGE_SAMPLE = 100;

    private final RelayAdmin admin;
    private final PrintStream out;
    private final PrintStream err;

    AdminCommands(RelayAdmin admin, PrintStream out, PrintStream err) {
        this.admin = admin;
        this.out = out;
        this.err = err;
    }

    int run(CommandLine cl) {
        return switch (cl.command()) {
            case STATUS -> status(cl.json());
            case PARKED_LIST -> list(cl.limit() == null ? DEFAULT_LIMIT : cl.limit(), cl.json());
            case PARKED_REQUEUE -> requeue(cl);
            case PARKED_PURGE -> purge(cl);
            case RUN -> throw new IllegalStateException("not an admin command");
            case DOCTOR -> throw new IllegalStateException("doctor is run by DoctorCommand");
        };
    }

    int status(boolean json) {
        RelayStatus s = admin.status();
        if (json) {
            out.println(Json.write(s));
            return 0;
        }
        Instant at = s.at();
        long leased = s.shards().stream().filter(ShardStatus::leaseLive).count();
        out.println("Outbox relay status, schema " + admin.schema() + ", at " + at.truncatedTo(ChronoUnit.SECONDS)
                + " (database clock)");
        out.println();
        out.println("backlog        " + s.backlog() + " message(s)"
                + (s.oldestAge() == null ? "" : ", oldest " + age(s.oldestAge())));
        out.println("parked         " + s.parked() + " message(s)" + (s.parked() > 0 ? "  (see: parked list)" : ""));
        ShardsWithoutLeaseRow stranded = s.withoutLeaseRow();
        if (stranded.any()) {
            List<String> numbers = stranded.shards().stream()
                    .map(sh -> String.valueOf(sh.shard()))
                    .toList();
            out.println("no lease row   " + stranded.backlog() + " message(s)"
                    + (stranded.oldestAge() == null ? "" : ", oldest " + age(stranded.oldestAge())) + ", "
                    + stranded.parked() + " parked, on shard(s) "
                    + (numbers.size() > 20
                            ? String.join(", ", numbers.subList(0, 20)) + ", ... (" + numbers.size() + " in all)"
                            : String.join(", ", numbers))
                    + " that have no lease row: no relay publishes them (counted in backlog and parked above)");
            out.println("               fix: " + stranded.fix());
        }
        out.println("shards         " + s.shards().size() + ", " + leased + " leased, "
                + (s.shards().size() - leased) + " without a live lease");
        out.println("live relays    " + s.liveMembers()
                + (s.members().size() > s.liveMembers()
                        ? " (" + (s.members().size() - s.liveMembers()) + " expired)"
                        : ""));
        out.println("outbox table   ~" + s.table().liveRows() + " live rows, ~"
                + s.table().deadRows() + " dead row versions, last vacuum "
                + (s.table().lastVacuum() == null ? "never" : ago(at, s.table().lastVacuum())));
        out.println();

        out.println("Relays:");
        TextTable members = new TextTable("INSTANCE", "LIVE", "SHARDS", "STARTED", "HEARTBEAT");
        for (RelayMember m : s.members()) {
            members.row(
                    m.owner(),
                    m.live() ? "yes" : "no",
                    m.ownedShards(),
                    ago(at, m.startedAt()),
                    until(at, m.heartbeatUntil()));
        }
        out.print(members.isEmpty() ? "  (none)\n" : members.render("  "));
        out.println();

        out.println("Shards:");
        TextTable shards = new TextTable("SHARD", "BACKLOG", "OLDEST", "PARKED", "OWNER", "EPOCH", "LEASE");
        for (ShardStatus sh : s.shards()) {
            String lease = sh.owner() == null ? "free" : until(at, sh.leaseUntil());
            shards.row(
                    sh.shard(),
                    sh.backlog(),
                    sh.oldestAge() == null ? "-" : age(sh.oldestAge()),
                    sh.parked(),
                    sh.owner(),
                    sh.epoch(),
                    lease);
        }
        out.print(shards.render("  "));
        out.println();

        out.println("xmin horizon (oldest first; vacuum cannot remove outbox rows deleted after these snapshots):");
        TextTable xmin = new TextTable("KIND", "NAME", "XMIN", "AGE(XIDS)", "SINCE", "STATE", "DETAIL");
        for (XminHolder h : s.xminHolders()) {
            xmin.row(
                    h.kind(),
                    h.name(),
                    h.xmin(),
                    h.xminAge(),
                    h.since() == null ? "-" : ago(at, h.since()),
                    h.state(),
                    h.detail());
        }
        out.print(xmin.isEmpty() ? "  (nothing else holds it)\n" : xmin.render("  "));
        if (!s.catalogXminHolders().isEmpty()) {
            out.println();
            out.println("catalog_xmin of replication slots (holds back vacuum of the system catalogs only, not of"
                    + " the outbox table):");
            TextTable catalogs = new TextTable("KIND", "NAME", "CATALOG XMIN", "AGE(XIDS)", "STATE", "DETAIL");
            for (XminHolder h : s.catalogXminHolders()) {
                catalogs.row(h.kind(), h.name(), h.xmin(), h.xminAge(), h.state(), h.detail());
            }
            out.print(catalogs.render("  "));
        }
        return 0;
    }

    int list(int limit, boolean json) {
        List<ParkedMessage> rows = admin.parked(limit);
        if (json) {
            out.println(Json.write(rows));
            return 0;
        }
        if (rows.isEmpty()) {
            out.println("No parked messages.");
            return 0;
        }
        printParked(rows);
        if (rows.size() == limit) {
            out.println("(first " + limit + " shown; --limit N shows more)");
        }
        return 0;
    }

    private void printParked(List<ParkedMessage> rows) {
        TextTable t = new TextTable(
                "ID", "MESSAGE ID", "SHARD", "TOPIC", "KEY", "BYTES", "ATTEMPTS", "PARKED AT", "LAST ERROR");
        for (ParkedMessage p : rows) {
            t.row(
                    p.id(),
                    p.messageId(),
                    p.shard(),
                    p.topic(),
                    p.key(),
                    p.payloadBytes(),
                    p.attempts(),
                    p.parkedAt().truncatedTo(ChronoUnit.SECONDS),
                    p.lastError());
        }
        out.print(t.render(""));
    }

    private int requeue(CommandLine cl) {
        ParkedChange c = cl.all() ? admin.requeueAll() : admin.requeue(cl.ids());
        out.println("Requeued " + c.count() + " parked message(s)" + ids(c.ids()) + ".");
        if (!c.notParked().isEmpty()) {
            out.println("Not parked, left alone: " + join(c.notParked()) + ".");
        }
        return 0;
    }

    private int purge(CommandLine cl) {
        if (!cl.yes()) {
            // every parked row the purge would delete is counted; at most a sample of them is listed
            String review = cl.all() ? admin.parkedReview() : null;
            long count =
                    cl.all() ? Long.parseLong(review.substring(0, review.indexOf(':'))) : admin.parkedCount(cl.ids());
            if (count == 0) {
                out.println("No parked messages to purge" + (cl.all() ? "." : " among the given ids."));
                return 0;
            }
            List<ParkedMessage> sample = cl.all() ? admin.parked(PURGE_SAMPLE) : admin.parked(cl.ids(), PURGE_SAMPLE);
            out.println("Would purge " + count + " parked message(s) for good"
                    + (count > sample.size() ? "; the " + sample.size() + " oldest:" : ":"));
            printParked(sample);
            err.println("parked purge deletes messages for good and was refused: add --yes"
                    + (cl.all() ? " --expect=" + review : "") + " to confirm.");
            return CliException.USAGE;
        }
        ParkedChange c;
        if (cl.all()) {
            c = admin.purgeAll(cl.expect());
            if (c == null) {
                err.println("Nothing purged: the parked messages are not those the dry run showed (--expect="
                        + cl.expect() + "; now " + admin.parkedReview() + "): a message was parked, requeued or"
                        + " purged since. Run parked purge --all again (without --yes) to see them.");
                return CliException.USAGE;
            }
        } else {
            c = admin.purge(cl.ids());
        }
        out.println("Purged " + c.count() + " parked message(s)" + ids(c.ids()) + "; they will never be published.");
        if (!c.notParked().isEmpty()) {
            out.println("Not parked, left alone: " + join(c.notParked()) + ".");
        }
        return 0;
    }

    private static String ids(List<Long> ids) {
        return ids.isEmpty() ? "" : ": " + join(ids);
    }

    private static String join(List<Long> ids) {
        if (ids.size() > 50) {
            return String.join(
                            ", ",
                            ids.subList(0, 50).stream().map(String::valueOf).toList()) + ", ... (" + ids.size()
                    + " in all)";
        }
        return String.join(", ", ids.stream().map(String::valueOf).toList());
    }

    /** @return a measured age as every message writes a duration, cut to a precision read at a glance */
    static String age(Duration d) {
        return Durations.format(Durations.roughly(d));
    }

    private static String ago(Instant now, Instant then) {
        return then == null ? "-" : age(Duration.between(then, now).abs()) + " ago";
    }

    private static String until(Instant now, Instant until) {
        if (until == null) {
            return "-";
        }
        Duration d = Duration.between(now, until);
        return d.isNegative() ? "expired " + age(d.abs()) + " ago" : age(d) + " left";
    }
}
