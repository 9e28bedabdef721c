package dev.outbox.relay.admin;

import dev.outbox.relay.admin.Doctor.Check;
import dev.outbox.relay.admin.Doctor.Verdict;
import dev.outbox.relay.internal.TopicReplication;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * What the guarantees assume of the servers, checked where they can be seen:
 *
 * <ul>
 *   <li>{@code database-durability}: a transaction the relay can read is durable. With {@code fsync} or
 *       {@code full_page_writes} off, with {@code synchronous_commit} off (or {@code local} while {@code
 *       synchronous_standby_names} is set), or with a failover to an asynchronous standby, a committed transaction can be lost after the relay published its rows: a
 *       message in Kafka whose business write is gone (G2). PostgreSQL's settings for this database and
 *       the roles' own settings are read, and the standbys this server streams to (a logical replication
 *       sender, a base backup in progress, the WAL stream of a base backup and a WAL receiver such as {@code
 *       pg_receivewal}, which writes WAL to files and replays none, are not standbys: none can be failed
 *       over to, a synchronous WAL receiver included).
 *   <li>{@code delivery-durability}: a record Kafka acknowledged to the relay survives a broker's loss.
 *       The relay deletes a row once its record is acknowledged with {@code acks=all}, which waits only
 *       for the replicas in sync: with {@code min.insync.replicas} 1 that can be the leader alone, and with
 *       {@code unclean.leader.election.enable} a replica that missed records can become leader; either
 *       way an acknowledged record can be lost after its row is gone (G1).
 * </ul>
 *
 * The doctor cannot tell a test database or a single-broker development cluster from production, so a
 * setting that is only unsafe if this is production is a {@link Verdict#WARN}; a replicated topic
 * configured so that its replication does not protect acknowledged records is a {@link Verdict#FAIL}
 * ({@link TopicReplication} decides, as it does for the relay's own warning).
 */
final class DurabilityChecks {
    private final Collection<String> topics;
    private final Map<String, Object> kafkaProperties;
    private final long kafkaTimeoutMs;

    DurabilityChecks(DoctorSettings settings) {
        Set<String> all = new TreeSet<>(settings.topics());
        settings.consumerTopics().values().forEach(all::addAll);
        this.topics = all;
        // as given (the run's admin client is made from them by the doctor): whether Kafka was given, and its address
        this.kafkaProperties = settings.kafkaProperties();
        this.kafkaTimeoutMs = settings.kafkaTimeout().toMillis();
    }

    /** @return whether a stored boolean setting means off, in any of the spellings PostgreSQL accepts */
    static boolean isOff(String value) {
        return switch (value.strip().toLowerCase(Locale.ROOT)) {
            case "off", "false", "no", "0" -> true;
            default -> false;
        };
    }

    /**
     * A {@code synchronous_commit} a role or a database sets for itself ({@code ALTER ROLE ... SET}, {@code
     * ALTER DATABASE ... SET}), as stored: {@code role} is "every role" and {@code database} "every database"
     * where the setting names none.
     */
    record RoleSetting(String role, String database, String value) {}

    /**
     * @return the {@code synchronous_commit} values set for roles or databases that apply in this database,
     *     which the doctor's own session does not show for other roles
     */
    static List<RoleSetting> synchronousCommitOfRoles(Connection c) throws SQLException {
        List<RoleSetting> settings = new ArrayList<>();
        try (PreparedStatement st = c.prepareStatement("select coalesce(r.rolname, 'every role'),"
                        + " coalesce(d.datname, 'every database'), x.setting from pg_db_role_setting s"
                        + " left join pg_roles r on r.oid = s.setrole left join pg_database d on d.oid = s.setdatabase"
                        + " cross join lateral unnest(s.setconfig) as x(setting)"
                        + " where (s.setdatabase = 0 or d.datname = current_database())"
                        + " and x.setting like 'synchronous\\_commit=%' order by 1, 2");
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                settings.add(new RoleSetting(
                        rs.getString(1), rs.getString(2), rs.getString(3).substring("synchronous_commit=".length())));
            }
        }
        return settings;
    }

    /** @return whether a stored synchronous_commit value is local: durable on this server only */
    static boolean isLocal(String value) {
        return value.strip().equalsIgnoreCase("local");
    }

    Check database(Connection c) throws SQLException {
        String title = "A transaction the relay can publish is durable on the database";
        List<String> evidence = new ArrayList<>();
        List<String> unsafe = new ArrayList<>();
        boolean unreadable = false;
        String standbyNames = "";
        // where synchronous_commit is local: commits do not wait for a synchronous standby, if there is one
        List<String> local = new ArrayList<>();
        try (PreparedStatement st = c.prepareStatement("select name, setting from pg_settings where name in"
                        + " ('fsync', 'full_page_writes', 'synchronous_commit', 'synchronous_standby_names')"
                        + " order by name");
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                String name = rs.getString(1);
                String value = rs.getString(2);
                if (name.equals("synchronous_standby_names")) {
                    standbyNames = value;
                    continue;
                }
                evidence.add(name + " = " + value + " (this database, the doctor's role)");
                if (isOff(value)) {
                    unsafe.add(name + "=off");
                } else if (name.equals("synchronous_commit") && isLocal(value)) {
                    local.add("synchronous_commit=local");
                }
            }
        }
        // the roles' and databases' own values, which the doctor's session does not show for other roles
        for (RoleSetting r : synchronousCommitOfRoles(c)) {
            evidence.add("synchronous_commit = " + r.value() + " for role " + r.role() + " in " + r.database());
            // stored as written: false, no and 0 are off too
            if (isOff(r.value())) {
                unsafe.add("synchronous_commit=" + r.value() + " for role " + r.role());
            } else if (isLocal(r.value())) {
                local.add("synchronous_commit=local for role " + r.role());
            }
        }
        // senders that are not standbys: a logical replication sender (a CDC connector such as Debezium), always
        // async; a base backup's sender (state backup), and the WAL stream pg_basebackup -X stream opens beside it,
        // found by the temporary slot pg_basebackup_<pid> it creates or by the backup sender of the same
        // application and client address; and a WAL receiver such as pg_receivewal, which writes WAL to files and
        // replays none: it has answered (write_lsn) with no apply position (replay_lsn null), while a standby reports
        // one in every answer, replaying from its start (told by what it reports, not by its application_name,
        // which any client sets). A sender that has not answered yet (a standby's first moment), or whose state the
        // doctor's role cannot read, counts as a standby
        try (PreparedStatement st = c.prepareStatement("select count(*) filter (where kind = 'standby'),"
                        + " count(sync_state) filter (where kind = 'standby'),"
                        + " count(*) filter (where kind = 'standby' and sync_state in ('sync', 'quorum')),"
                        + " count(*) filter (where kind = 'logical'),"
                        + " count(*) filter (where kind = 'backup'),"
                        + " count(*) filter (where kind = 'backup wal'),"
                        + " count(*) filter (where kind = 'wal receiver'),"
                        + " count(*) filter (where kind = 'wal receiver' and sync_state in ('sync', 'quorum')),"
                        + " coalesce(string_agg(distinct application_name, ', ')"
                        + " filter (where kind = 'wal receiver' and application_name <> ''), '')"
                        + " from (select r.sync_state, r.application_name, case"
                        + " when exists (select 1 from pg_replication_slots s"
                        + " where s.active_pid = r.pid and s.slot_type = 'logical') then 'logical'"
                        + " when r.state = 'backup' then 'backup'"
                        + " when exists (select 1 from pg_replication_slots s where s.active_pid = r.pid"
                        + " and s.temporary and s.slot_name = 'pg_basebackup_' || r.pid)"
                        + " or exists (select 1 from pg_stat_replication b where b.state = 'backup' and b.pid <> r.pid"
                        + " and b.application_name = r.application_name and b.client_addr is not distinct from r.client_addr)"
                        + " then 'backup wal'"
                        + " when r.write_lsn is not null and r.replay_lsn is null then 'wal receiver'"
                        + " else 'standby' end as kind"
                        + " from pg_stat_replication r) senders");
                ResultSet rs = st.executeQuery()) {
            rs.next();
            int standbys = rs.getInt(1);
            int readable = rs.getInt(2);
            int synchronous = rs.getInt(3);
            int logical = rs.getInt(4);
            int backups = rs.getInt(5);
            int backupStreams = rs.getInt(6);
            int receivers = rs.getInt(7);
            int synchronousReceivers = rs.getInt(8);
            String receiverNames = rs.getString(9);
            if (logical > 0) {
                evidence.add(logical + " logical replication sender(s) (change data capture, not standbys)");
            }
            if (backups > 0) {
                evidence.add(
                        backups == 1
                                ? "1 base backup in progress (not a standby)"
                                : backups + " base backups in progress (not standbys)");
            }
            if (backupStreams > 0) {
                evidence.add(
                        backupStreams == 1
                                ? "1 WAL stream of a base backup (pg_basebackup -X stream, not a standby)"
                                : backupStreams
                                        + " WAL streams of base backups (pg_basebackup -X stream, not standbys)");
            }
            if (receivers > 0) {
                // a synchronous one holds each commit until its WAL is flushed there, but cannot be failed over to
                String details = receiverNames.isEmpty() ? "" : receiverNames + ", ";
                if (synchronousReceivers > 0) {
                    details += receivers == 1 ? "synchronous, " : synchronousReceivers + " synchronous, ";
                }
                evidence.add(
                        receivers == 1
                                ? "1 WAL receiver (" + details + "not a standby)"
                                : receivers + " WAL receivers (" + details + "not standbys)");
            }
            if (standbys == 0) {
                evidence.add("no standby streams from this server");
            } else if (readable < standbys) {
                evidence.add(standbys + " standby(s) stream from this server; their sync state is not readable"
                        + " (the doctor's role needs pg_read_all_stats)");
                unreadable = true;
            } else {
                evidence.add(standbys + " standby(s), " + synchronous + " synchronous; synchronous_standby_names = '"
                        + standbyNames + "'");
                if (synchronous == 0) {
                    unsafe.add("only asynchronous standbys");
                }
            }
            // synchronous replication is configured, so a failover to the synchronous standby is planned for;
            // commits made with local do not wait for it and can be missing there
            if (!standbyNames.isBlank()) {
                local.forEach(l -> unsafe.add(l + " with synchronous_standby_names set"));
            }
        }
        if (unsafe.isEmpty() && unreadable) {
            return new Check(
                    "database-durability",
                    title,
                    Verdict.WARN,
                    "durable settings, but whether the standbys are synchronous is not readable: a failover to an"
                            + " asynchronous one can lose commits the relay published (G2)",
                    evidence,
                    "Grant pg_read_all_stats to the doctor's role (or run it as a role that has it), so that it"
                            + " reads the standbys' sync state.");
        }
        if (unsafe.isEmpty()) {
            return new Check("database-durability", title, Verdict.PASS, "durable settings", evidence, null);
        }
        return new Check(
                "database-durability",
                title,
                Verdict.WARN,
                String.join(", ", unsafe) + ": a committed transaction can be lost after the relay published its"
                        + " rows (a crash, or a failover to a standby that lacks it), leaving messages in Kafka"
                        + " for writes that are gone (G2). Fine for a test database, not for production",
                evidence,
                "In production keep fsync, full_page_writes and synchronous_commit on for the producers' roles"
                        + " (synchronous_commit = off lets the relay read a transaction before it is durable), and"
                        + " fail over only to a standby that had every commit (synchronous_standby_names with"
                        + " synchronous_commit on or remote_apply, not local, for every producer's role; or a"
                        + " failover that waits for the standby).");
    }

    /** @param kafka the run's admin client, asked only when Kafka and topics were given */
    Check delivery(KafkaSession kafka) {
        String title = "A record Kafka acknowledged survives the loss of a broker";
        if (kafkaProperties == null) {
            return new Check(
                    "delivery-durability",
                    title,
                    Verdict.SKIP,
                    "Kafka not given",
                    List.of(),
                    "Give Kafka's address (bootstrap-servers) so the doctor can read the topics' replication.");
        }
        if (topics.isEmpty()) {
            return new Check(
                    "delivery-durability",
                    title,
                    Verdict.SKIP,
                    "no topics named",
                    List.of(),
                    "Name the topics the relay publishes to (--topic T[,T...], Doctor.Builder.topics) or the"
                            + " consumers' topics (--consumer NAME=TOPIC).");
        }
        List<String> evidence = new ArrayList<>();
        List<String> failed = new ArrayList<>();
        List<String> warned = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        try {
            Admin admin = kafka.admin();
            Map<String, TopicDescription> described = new TreeMap<>();
            for (var e : admin.describeTopics(topics).topicNameValues().entrySet()) {
                try {
                    described.put(e.getKey(), e.getValue().get(kafkaTimeoutMs, TimeUnit.MILLISECONDS));
                } catch (ExecutionException ex) {
                    if (!(ex.getCause() instanceof UnknownTopicOrPartitionException)) {
                        throw ex;
                    }
                    evidence.add("topic " + e.getKey() + ": does not exist");
                    warned.add(e.getKey() + " (does not exist)");
                    missing.add(e.getKey());
                }
            }
            List<ConfigResource> resources = described.keySet().stream()
                    .map(t -> new ConfigResource(ConfigResource.Type.TOPIC, t))
                    .toList();
            Map<ConfigResource, Config> configs = resources.isEmpty()
                    ? Map.of()
                    : admin.describeConfigs(resources).all().get(kafkaTimeoutMs, TimeUnit.MILLISECONDS);
            for (var e : described.entrySet()) {
                String topic = e.getKey();
                int replicas = TopicReplication.fewestReplicas(e.getValue());
                TopicReplication.Finding f = TopicReplication.of(
                        replicas, configs.get(new ConfigResource(ConfigResource.Type.TOPIC, topic)));
                evidence.add("topic " + topic + ": " + f.settings()
                        + (f.risk() == TopicReplication.Risk.NONE ? "" : ": " + f.reason()));
                if (f.risk() == TopicReplication.Risk.LOSS) {
                    failed.add(topic);
                } else if (f.risk() != TopicReplication.Risk.NONE) {
                    warned.add(topic);
                }
            }
        } catch (ExecutionException | TimeoutException | RuntimeException e) {
            return TopicRetentionCheck.unreadable(
                    "delivery-durability", title, "replication", kafkaProperties, evidence, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Check(
                    "delivery-durability", title, Verdict.FAIL, "interrupted while asking Kafka", evidence, null);
        }
        String fix = "Give each topic a replication factor of 3 and min.insync.replicas 2 (kafka-configs --alter"
                + " --entity-type topics --entity-name T --add-config min.insync.replicas=2), and keep"
                + " unclean.leader.election.enable false. The relay's acks=all then waits for two copies.";
        if (!missing.isEmpty()) {
            String create = "Create " + String.join(", ", missing) + " with replication factor 3 and"
                    + " min.insync.replicas 2 (kafka-topics --create --replication-factor 3 --config"
                    + " min.insync.replicas=2), or correct the name given (--topic, --consumer).";
            fix = failed.isEmpty() && warned.size() == missing.size() ? create : fix + " " + create;
        }
        if (!failed.isEmpty()) {
            return new Check(
                    "delivery-durability",
                    title,
                    Verdict.FAIL,
                    "acknowledged records can be lost with a broker on " + String.join(", ", failed)
                            + ", after the relay deleted their rows (G1)",
                    evidence,
                    fix);
        }
        if (!warned.isEmpty()) {
            return new Check(
                    "delivery-durability", title, Verdict.WARN, "look at " + String.join(", ", warned), evidence, fix);
        }
        return new Check(
                "delivery-durability",
                title,
                Verdict.PASS,
                "every topic keeps an acknowledged record on two replicas or more",
                evidence,
                null);
    }
}
