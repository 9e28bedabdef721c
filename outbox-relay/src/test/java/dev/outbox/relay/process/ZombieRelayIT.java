package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.Shards;
import dev.outbox.relay.Relay;
import dev.outbox.relay.internal.DeadlineIgnoringMain;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.io.IOException;
import java.time.Duration;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.awaitility.core.ConditionTimeoutException;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A relay process frozen with SIGSTOP past its lease and thawed with SIGCONT after another relay took
 * its shards over and published newer messages of the same keys: the zombie.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class ZombieRelayIT {
    private static final int KEYS = 60;
    /** With a missing topic: the last this many keys write to it, the others to the healthy topic. */
    private static final int MISSING_KEYS = 10;

    private static final int WRITERS = 4;
    private static final int PARTITIONS = 3;
    private static final Duration LEASE = Duration.ofSeconds(6);
    // between delivery.timeout.ms (half the lease's third: 1 s) and the third (2 s), see ENGINE.md
    private static final String TIMESTAMP_BOUND_MS = "1500";
    /**
     * Past what they remember: batches this small make a shard remember at most 50 held rows ({@code
     * ShardWorker.HELD_WINDOW_BATCHES} batches), fewer than a key of the missing topic commits in a few
     * seconds.
     */
    private static final int PAST_HELD_BATCH_SIZE = 5;
    /** In the WARN a shard logs when it holds more rows than it remembers and its reads go past them. */
    private static final String PAST_HELD = "its reads now leave out those topics' rows and their keys' rows";

    private static final Pattern PAST_HELD_SHARD = Pattern.compile("shard (\\d+): holds more rows of topics");
    private static final Pattern WITHIN_HELD_SHARD = Pattern.compile("shard (\\d+): holds no more rows of topics");

    /**
     * G3 across a zombie relay, for deduplicating and for last-value consumers: relay-a is paused
     * with SIGSTOP while it publishes, stays frozen until relay-b took its shards over, published the
     * writers' newer messages and drained the outbox, and is then resumed. Writers on four threads
     * serialise per key on a row lock (the per-key sequence is taken under it, so it is the commit
     * order). Afterwards, for every key, the first appearances follow commit order and the last record
     * in the partition is the key's latest committed message: nothing relay-a held when it froze
     * landed after relay-b's records. The topic has {@code message.timestamp.before.max.ms} inside the
     * lease's margin, as ENGINE.md prescribes for last-value consumers.
     */
    @Test
    @Timeout(value = 8, unit = TimeUnit.MINUTES)
    void aRelayThawedAfterLosingItsLeasePublishesNothingAfterTheNewOwner(TestDatabase db, TestKafka kafka)
            throws Exception {
        zombie(db, kafka, Scenario.FROZEN);
    }

    /**
     * G3 across a zombie relay in the strict mode, {@code publish-mode=transactional}, with neither of
     * the default mode's defences: the topic has no {@code message.timestamp.before.max.ms}, and the
     * zombie (relay-a) runs with its local lease deadline turned off ({@link
     * dev.outbox.relay.internal.DeadlineIgnoringMain}), so it sends whatever it holds when it thaws.
     * Only the broker's fencing of its per-shard transactional ids keeps those records out: a {@code
     * read_committed} consumer sees, for every key, first appearances in commit order, the latest
     * committed message last, and not one record made visible after the thaw.
     */
    @Test
    @Timeout(value = 8, unit = TimeUnit.MINUTES)
    void inTheTransactionalModeTheBrokerFencesAThawedRelay(TestDatabase db, TestKafka kafka) throws Exception {
        zombie(db, kafka, Scenario.FROZEN_TRANSACTIONAL);
    }

    /**
     * G3 and G7 across a zombie relay that froze while a topic was missing: a sixth of the keys
     * alternate between a topic that does not exist yet (on a broker that does not create topics),
     * where each of them writes first, and a healthy one; the other keys write to the healthy topic
     * only. relay-a is paused with SIGSTOP while its shards hold rows of the missing topic. relay-b
     * takes its shards over and, while the topic is still missing, publishes every message of the
     * other keys (G7: the held topic blocks no other key, across the takeover) and none of the
     * alternating keys' (G3: their later messages wait for the held one). The topic is then created,
     * relay-b publishes what it held and the writers' newer messages, and relay-a is resumed. For
     * every key, in each topic, the first appearances follow commit order and the last record is the
     * latest committed message: nothing relay-a held, for either topic, landed after relay-b's records.
     */
    @Test
    @Timeout(value = 8, unit = TimeUnit.MINUTES)
    void aRelayFrozenWhileATopicIsMissingPublishesNothingAfterTheNewOwner(TestDatabase db) throws Exception {
        zombieWithAMissingTopic(db, Scenario.FROZEN_WHILE_A_TOPIC_IS_MISSING);
    }

    /**
     * G1, G3 and G7 across a zombie relay whose shards hold more rows of a missing topic than they
     * remember: the scenario of {@link #aRelayFrozenWhileATopicIsMissingPublishesNothingAfterTheNewOwner}
     * in batches of {@value #PAST_HELD_BATCH_SIZE} rows, so that a shard remembers 50 held rows and its
     * reads then leave out the held topic's rows and their keys' later rows. Writers on four threads
     * serialise per key on a row lock. relay-a is paused with SIGSTOP past its lease once its log shows
     * it past the held rows it remembers on a shard where other keys write to the healthy topic; relay-b
     * takes its shards over, and its log shows it past the held rows of those same shards while the
     * topic is still missing. Meanwhile every message of the other keys committed so far is published
     * (G7), those on these shards committed after relay-b went past the held rows included, and no
     * later message of the alternating keys (G3). Once the topic is created every committed message
     * reaches Kafka (G1), and for every key, in each topic, the first appearances follow commit order
     * and the last record is the latest committed message: nothing relay-a held when it froze landed
     * after relay-b's records. {@code max-attempts} is at its largest, so that no held row is parked
     * while the topic is missing.
     */
    @Test
    @Timeout(value = 8, unit = TimeUnit.MINUTES)
    void aRelayFrozenPastTheHeldRowsItRemembersPublishesNothingAfterTheNewOwner(TestDatabase db) throws Exception {
        zombieWithAMissingTopic(db, Scenario.FROZEN_PAST_THE_HELD_ROWS);
    }

    /**
     * G1, G3 and G7 across a relay killed (SIGKILL) past the held rows it remembers: the scenario of
     * {@link #aRelayFrozenPastTheHeldRowsItRemembersPublishesNothingAfterTheNewOwner}, with relay-a
     * killed instead of frozen at the same moment, so that its batches in flight, its unacknowledged
     * sends and its deferred deletes die with it. relay-b takes its shards over when their leases
     * expire, reads past their held rows too, publishes every healthy message and none of a held key's
     * later ones while the topic is missing, and, once it exists, every committed message in commit
     * order per key and topic.
     */
    @Test
    @Timeout(value = 8, unit = TimeUnit.MINUTES)
    void aRelayKilledPastTheHeldRowsItRemembersLosesAndReordersNothing(TestDatabase db) throws Exception {
        zombieWithAMissingTopic(db, Scenario.KILLED_PAST_THE_HELD_ROWS);
    }

    /** Runs {@code scenario} on a broker of its own that does not create topics when asked for one. */
    private void zombieWithAMissingTopic(TestDatabase db, Scenario scenario) throws Exception {
        try (TestKafka broker = TestKafka.startInJvm(Map.of("auto.create.topics.enable", "false"))) {
            zombie(db, broker, scenario);
        }
    }

    /**
     * What a run does to relay-a and around it.
     *
     * @param transactional the strict mode with only the broker's fence: relay-a ignores its lease
     *     deadline, the topic has no timestamp bound, the test consumer reads committed records only
     * @param missingTopic the last {@value #MISSING_KEYS} keys write to a topic that is created only
     *     while relay-a is frozen; the broker must not create topics on its own
     * @param pastHeld with {@code missingTopic}: batches of {@value #PAST_HELD_BATCH_SIZE} rows; relay-a
     *     is frozen only once it reads past the held rows it remembers, on a shard with rows of healthy
     *     keys too, and relay-b must read past them on each shard relay-a did before the topic is created
     * @param killed relay-a gets SIGKILL where it would get SIGSTOP, and is not thawed
     */
    private record Scenario(boolean transactional, boolean missingTopic, boolean pastHeld, boolean killed) {
        static final Scenario FROZEN = new Scenario(false, false, false, false);
        static final Scenario FROZEN_TRANSACTIONAL = new Scenario(true, false, false, false);
        static final Scenario FROZEN_WHILE_A_TOPIC_IS_MISSING = new Scenario(false, true, false, false);
        static final Scenario FROZEN_PAST_THE_HELD_ROWS = new Scenario(false, true, true, false);
        static final Scenario KILLED_PAST_THE_HELD_ROWS = new Scenario(false, true, true, true);
    }

    /**
     * Without a missing topic, relay-a is frozen at a moment when it holds rows it published and has
     * not deleted yet (the freeze is tried again, up to five times, after letting it run for a
     * moment; required in the default mode): the new owner publishes those again, and they must not
     * land after its records.
     */
    private void zombie(TestDatabase db, TestKafka kafka, Scenario scenario) throws Exception {
        boolean transactional = scenario.transactional();
        boolean missingTopic = scenario.missingTopic();
        boolean pastHeld = scenario.pastHeld();
        boolean killed = scenario.killed();
        String topic = TestKafka.uniqueTopic(transactional ? "zombie-tx" : "zombie");
        String missing = missingTopic ? TestKafka.uniqueTopic("zombie-missing") : null;
        createTopic(kafka, topic, transactional);
        // rows an earlier scenario left (stopped before they were all published, on a broker of its own
        // whose topics this scenario's broker does not have) would hold this scenario's keys behind them:
        // the writers start from an empty outbox
        KeyLockWriters writers = new KeyLockWriters(db.dsl(), KEYS, topic, missing, ZombieRelayIT::isMissingKey);
        Map<String, TreeMap<Integer, UUID>> committed = writers.committed();
        // the test's reader of each topic: the healthy one's, and the missing one's once it exists
        Map<String, Records> readers = new LinkedHashMap<>();

        Properties consumer = kafka.consumerProperties("unused");
        if (transactional) {
            consumer.put("isolation.level", "read_committed");
        }
        // the child relays' logs (target/child-relays) are named by scenario, so that each run keeps its own
        String mode = transactional
                ? "tx-"
                : !missingTopic ? "" : !pastHeld ? "missing-" : killed ? "killed-past-held-" : "past-held-";
        try (Records records = new Records(consumer, topic, PARTITIONS);
                ChildRelay a = ChildRelay.start(
                        "zombie-" + mode + "a",
                        env(db, kafka, "relay-a", transactional, missingTopic, pastHeld),
                        transactional ? DeadlineIgnoringMain.class : Main.class);
                ChildRelay b = ChildRelay.start(
                        "zombie-" + mode + "b", env(db, kafka, "relay-b", transactional, missingTopic, pastHeld))) {
            readers.put(topic, records);
            ChildRelay.awaitLeasing(db, Duration.ofSeconds(300), a, b);

            writers.start(WRITERS);
            // generous: 64 transactional producers and a broker in one JVM are slow on a loaded machine
            await("relay-a publishing")
                    .atMost(Duration.ofSeconds(180))
                    .until(() -> records.size() >= 2_000 || writers.failed());
            if (missingTopic) {
                // relay-a's shards have had rows of the missing topic for a while: it holds them when it freezes
                await("rows of the missing topic on relay-a's shards")
                        .atMost(Duration.ofSeconds(60))
                        .until(() -> missingRowsOf(db, "relay-a", missing) > 0);
                if (pastHeld) {
                    // past the held rows on a shard whose healthy keys must still flow, and reading past them a
                    // while; and Kafka has answered that the topic has no metadata (the first lookup waits up to
                    // max.block.ms), so that relay-a too counts failed checks of the held rows in this mode
                    await("relay-a past the held rows it remembers on a shard with healthy keys")
                            .atMost(Duration.ofSeconds(120))
                            .pollInterval(Duration.ofMillis(250))
                            .until(() -> {
                                if (!a.stdout().contains("topic " + missing + " has no metadata")) {
                                    return false;
                                }
                                Set<Integer> shards = pastHeldShards(a, 0);
                                shards.retainAll(leasedShards(db, "relay-a"));
                                shards.retainAll(mixedShards());
                                return !shards.isEmpty();
                            });
                }
                Thread.sleep(2_000);
            }

            int leasesOfA = 0;
            long missingRowsOfA = 0;
            int frozenUndeleted = 0;
            int freezes = 0;
            // the shards relay-a read past their held rows when it froze, and where relay-b's log stood then
            Set<Integer> pastHeldOfA = Set.of();
            long linesOfB = 0;
            Set<Integer> pastHeldOfB = Set.of();
            long maxAttempts = 0;
            try {
                // frozen, if it can be, while it holds rows it published and has not deleted yet: tried again a
                // few times after letting it run (and renew its leases) for a moment. Not with the missing topic:
                // there relay-a is often waiting for that topic's metadata, publishing nothing, when it freezes
                while (true) {
                    freezes++;
                    a.signal(killed ? "KILL" : "STOP");
                    leasesOfA = ChildRelay.liveLeases(db, "relay-a");
                    missingRowsOfA = missingTopic ? missingRowsOf(db, "relay-a", missing) : 0;
                    Set<UUID> leftOnA = messageIdsOn(db, "relay-a");
                    // the reader catches up with what relay-a published before it froze; relay-b cannot publish
                    // on its shards yet (a lease renewed at most a third of it ago runs two thirds more)
                    Thread.sleep(1_000);
                    leftOnA.retainAll(new HashSet<>(received(readers).stream()
                            .map(Records.Received::messageId)
                            .toList()));
                    frozenUndeleted = leftOnA.size();
                    if (frozenUndeleted > 0 || freezes == 5 || missingTopic) {
                        break;
                    }
                    a.signal("CONT");
                    Thread.sleep(2_500);
                }
                if (pastHeld) {
                    pastHeldOfA = pastHeldShards(a, 0);
                    pastHeldOfA.retainAll(leasedShards(db, "relay-a"));
                    linesOfB = b.stdout().lines().count();
                    assertThat(pastHeldOfA)
                            .as("relay-a's shards past the held rows they remember when it froze")
                            .isNotEmpty();
                }
                // relay-b takes relay-a's shards when their leases expire, and publishes newer messages of their keys
                await("relay-b owns every shard")
                        .atMost(Duration.ofSeconds(60))
                        .pollInterval(Duration.ofMillis(250))
                        .untilAsserted(() ->
                                assertThat(ChildRelay.liveLeases(db, "relay-b")).isEqualTo(64));
                if (missingTopic) {
                    Set<UUID> beforePastHeldOfB = new HashSet<>();
                    if (pastHeld) {
                        // relay-b's epochs of relay-a's shards read their held rows again, remember 50, and go past
                        // them too: the held rows only grow while the topic is missing
                        Set<Integer> ofA = Set.copyOf(pastHeldOfA);
                        long from = linesOfB;
                        await("relay-b past the held rows it remembers on the shards relay-a was past them on")
                                .atMost(Duration.ofSeconds(60))
                                .pollInterval(Duration.ofMillis(250))
                                .until(() -> pastHeldShards(b, from).containsAll(ofA));
                        pastHeldOfB = pastHeldShards(b, from);
                        pastHeldOfB.retainAll(ofA);
                        committed.values().forEach(perKey -> {
                            synchronized (perKey) {
                                beforePastHeldOfB.addAll(perKey.values());
                            }
                        });
                        // the writers go on committing messages of the healthy keys on those shards, which relay-b
                        // reaches only by reading past the held rows
                        Thread.sleep(2_000);
                    }
                    assertThat(parkedOf(db, missing))
                            .as(
                                    "rows of %s parked while it is missing (the attempts budget ran out: not a G3 question)",
                                    missing)
                            .isZero();
                    Set<UUID> healthy = whileTheTopicIsMissing(db, b, records, committed, missing);
                    if (pastHeld) {
                        Set<Integer> sameShards = new HashSet<>(pastHeldOfB);
                        sameShards.retainAll(mixedShards());
                        Set<UUID> behindHeld = new HashSet<>();
                        committed.forEach((key, perKey) -> {
                            if (!isMissingKey(key) && sameShards.contains(shardOf(key))) {
                                synchronized (perKey) {
                                    behindHeld.addAll(perKey.values());
                                }
                            }
                        });
                        behindHeld.retainAll(healthy);
                        behindHeld.removeAll(beforePastHeldOfB);
                        assertThat(behindHeld)
                                .as(
                                        "G7: healthy messages on shards %s, committed after relay-b read past"
                                                + " their held rows",
                                        sameShards)
                                .isNotEmpty();
                    }
                    maxAttempts = db.dsl()
                            .fetchOne(
                                    "select coalesce(max(attempts), 0) from outbox.outbox_message where topic = ?",
                                    missing)
                            .get(0, Long.class);
                    createTopic(kafka, missing, false);
                    readers.put(missing, new Records(consumer, missing, PARTITIONS));
                }
                Thread.sleep(3_000);
                writers.stop();
                await("relay-b drained the outbox")
                        .atMost(Duration.ofSeconds(120))
                        .untilAsserted(() -> assertThat(
                                        ProcessKillFailoverIT.count(db, "select count(*) from outbox.outbox_message"))
                                .isZero());
                await("every committed message in Kafka")
                        .atMost(Duration.ofSeconds(60))
                        .untilAsserted(() -> {
                            Set<UUID> seen = new HashSet<>();
                            received(readers).forEach(r -> seen.add(r.messageId()));
                            assertThat(seen.size())
                                    .as("distinct messages in Kafka")
                                    .isGreaterThanOrEqualTo(writers.appended());
                        });
            } finally {
                if (!killed) {
                    a.signal("CONT");
                }
            }
            int beforeThaw = received(readers).size();
            if (!killed) {
                // the thawed relay finds its leases gone, drops its shards and claims its share again; anything it
                // still held from before the freeze would arrive now
                await("relay-a back in the rotation")
                        .atMost(Duration.ofSeconds(60))
                        .pollInterval(Duration.ofMillis(250))
                        .untilAsserted(() ->
                                assertThat(ChildRelay.liveLeases(db, "relay-a")).isPositive());
                Thread.sleep(3_000);
            }

            Map<String, List<Records.Received>> byTopic = new LinkedHashMap<>();
            readers.forEach((t, r) -> byTopic.put(t, r.all()));
            List<Records.Received> all =
                    byTopic.values().stream().flatMap(List::stream).toList();
            writers.assertCommitOrder(byTopic);
            assertThat(leasesOfA).as("relay-a held shards when it froze").isPositive();
            if (!missingTopic && !transactional) {
                // most of them deferred deletes, lingering for others to share their statement (ENGINE.md); in
                // the strict mode a batch's rows are visible to the reader only from its commit, a moment before
                // their delete, and five freezes may all miss that moment: reported, not required
                assertThat(frozenUndeleted)
                        .as("rows relay-a had published and not yet deleted when it froze")
                        .isPositive();
            }
            if (missingTopic) {
                assertThat(missingRowsOfA)
                        .as("relay-a's shards held rows of the missing topic when it froze")
                        .isPositive();
            }
            if (pastHeld) {
                assertThat(maxAttempts)
                        .as("failed checks of the missing topic counted as attempts of its held rows, past the bound")
                        .isPositive();
            }
            long fencedLines =
                    a.stdout().lines().filter(l -> l.contains("no longer held")).count();
            String held = missingTopic
                    ? String.format(
                            "; held rows counted up to %d attempt(s) while the topic was missing; past-held WARN lines:"
                                    + " relay-a %d (shards %s at the freeze), relay-b %d (shards %s after the"
                                    + " takeover)",
                            maxAttempts,
                            a.stdout()
                                    .lines()
                                    .filter(l -> l.contains(PAST_HELD))
                                    .count(),
                            pastHeldOfA,
                            b.stdout()
                                    .lines()
                                    .filter(l -> l.contains(PAST_HELD))
                                    .count(),
                            pastHeldOfB)
                    : "";
            System.out.printf(
                    "[ZombieRelayIT] %s: %d messages on %d keys, %d records in Kafka (%d after the thaw); relay-a %s"
                            + " holding %d shards (%d rows of the missing topic, %d rows published and not deleted, at"
                            + " attempt %d); after the thaw it reported %d fenced write(s) or commit(s)%s%n",
                    transactional
                            ? "transactional, no deadline, no timestamp bound"
                            : missingTopic
                                    ? pastHeld
                                            ? "idempotent, a topic missing at the " + (killed ? "kill" : "freeze")
                                                    + ", shards past the held rows they remember"
                                            : "idempotent, a topic missing at the freeze"
                                    : "idempotent",
                    writers.appended(),
                    KEYS,
                    all.size(),
                    all.size() - beforeThaw,
                    killed ? "was killed (not thawed)" : "froze",
                    leasesOfA,
                    missingRowsOfA,
                    frozenUndeleted,
                    freezes,
                    fencedLines,
                    held);
            if (transactional) {
                // relay-b had drained the outbox and the writers had stopped: whatever appears now is relay-a's
                assertThat(all.size() - beforeThaw)
                        .as("records made visible after the thaw")
                        .isZero();
            }
            a.process.destroy();
            b.process.destroy();
            assertThat(a.waitFor(90)).as("relay-a exit code, see %s", a.err).isEqualTo(killed ? 128 + 9 : 0);
            assertThat(b.waitFor(90)).as("relay-b exit code, see %s", b.err).isZero();
        } finally {
            // the healthy topic's reader is closed with the other resources; the missing topic's is not one
            Records late = missing == null ? null : readers.get(missing);
            if (late != null) {
                late.close();
            }
        }
    }

    /**
     * While the missing topic still does not exist, after relay-b took relay-a's shards over: every
     * message of the healthy keys committed so far reaches Kafka (G7), and no message of a key that
     * wrote to the missing topic first does (G3).
     *
     * @return the healthy keys' messages it found published
     */
    private static Set<UUID> whileTheTopicIsMissing(
            TestDatabase db,
            ChildRelay b,
            Records records,
            Map<String, TreeMap<Integer, UUID>> committed,
            String missing)
            throws IOException {
        Set<UUID> healthy = new HashSet<>();
        committed.forEach((key, perKey) -> {
            if (!isMissingKey(key)) {
                synchronized (perKey) {
                    healthy.addAll(perKey.values());
                }
            }
        });
        // G7 says the healthy keys are not blocked, not how fast a backlog of about 10,000 rows, read past the held
        // ones in batches of 100, drains beside a loaded build: one clean-checkout run had 47 left after 60 s, and
        // two runs of the whole suite (2026-12-07) had some left after 180 s where the test alone took 37 s. The
        // wait counts the messages missing, once a second: an assertion on the sets, failing every 100 ms, formats
        // thousands of ids in this JVM, which also runs both brokers and the readers
        try {
            await("G7: every healthy message committed so far published while " + missing + " is missing")
                    .atMost(Duration.ofSeconds(300))
                    .pollInterval(Duration.ofSeconds(1))
                    .untilAsserted(() -> assertThat(records.missing(healthy))
                            .as("healthy messages not published, of %d", healthy.size())
                            .isZero());
        } catch (ConditionTimeoutException e) {
            throw new AssertionError(unpublishedReport(db, b, records, committed, healthy, missing), e);
        }
        // each key of the missing topic wrote there first: its later messages to the healthy topic wait
        assertThat(records.all())
                .as("G3: no key whose first message is held for %s has a later one published", missing)
                .noneMatch(r -> isMissingKey(r.key()));
        return healthy;
    }

    /**
     * @return where the healthy messages still unpublished are: their count per shard, the shards' rows
     *     left in the outbox (held ones of the missing topic apart), and the shards relay-b reads past
     *     their held rows on
     */
    private static String unpublishedReport(
            TestDatabase db,
            ChildRelay b,
            Records records,
            Map<String, TreeMap<Integer, UUID>> committed,
            Set<UUID> healthy,
            String missing)
            throws IOException {
        Set<UUID> seen = new HashSet<>();
        records.all().forEach(r -> seen.add(r.messageId()));
        Map<Integer, Integer> left = new TreeMap<>();
        committed.forEach((key, perKey) -> {
            synchronized (perKey) {
                perKey.values().stream()
                        .filter(id -> healthy.contains(id) && !seen.contains(id))
                        .forEach(id -> left.merge(shardOf(key), 1, Integer::sum));
            }
        });
        String rows = db.dsl()
                .fetch(
                        "select shard, count(*) filter (where topic = ?) as held, count(*) as rows, max(attempts) as"
                                + " attempts from outbox.outbox_message where shard = any(?) group by shard order by shard",
                        missing,
                        left.keySet().toArray(Integer[]::new))
                .formatCSV();
        return "healthy messages unpublished per shard " + left + "; those shards' rows in the outbox:\n" + rows
                + "relay-b reads past the held rows of shards " + pastHeldShards(b, 0) + " (logs in "
                + ChildRelay.LOGS.toAbsolutePath() + ")";
    }

    private static int shardOf(String key) {
        return Shards.of(key, null, Shards.DEFAULT_COUNT);
    }

    /** @return the shards with rows of both a key of the missing topic and a healthy key */
    private static Set<Integer> mixedShards() {
        Set<Integer> missing = new HashSet<>();
        Set<Integer> healthy = new HashSet<>();
        for (int k = 0; k < KEYS; k++) {
            String key = "key-" + k;
            (isMissingKey(key) ? missing : healthy).add(shardOf(key));
        }
        missing.retainAll(healthy);
        return missing;
    }

    /**
     * @return the shards whose latest line about it in {@code relay}'s log, from line {@code from} on, is
     *     the WARN that it holds more rows than it remembers and reads past them (not the line that it
     *     no longer does)
     */
    private static Set<Integer> pastHeldShards(ChildRelay relay, long from) throws IOException {
        Set<Integer> shards = new TreeSet<>();
        relay.stdout().lines().skip(from).forEach(l -> {
            Matcher past = PAST_HELD_SHARD.matcher(l);
            Matcher within = WITHIN_HELD_SHARD.matcher(l);
            if (l.contains(PAST_HELD) && past.find()) {
                shards.add(Integer.valueOf(past.group(1)));
            } else if (within.find()) {
                shards.remove(Integer.valueOf(within.group(1)));
            }
        });
        return shards;
    }

    /** @return the shards {@code owner} holds an unexpired lease on */
    private static Set<Integer> leasedShards(TestDatabase db, String owner) {
        return new HashSet<>(db.dsl()
                .fetch(
                        "select shard from outbox.outbox_shard_lease where owner = ?"
                                + " and lease_until > clock_timestamp()",
                        owner)
                .getValues(0, Integer.class));
    }

    private static boolean isMissingKey(String key) {
        return Integer.parseInt(key.substring("key-".length())) >= KEYS - MISSING_KEYS;
    }

    /** @return the rows for {@code missing} on the shards {@code owner} leases */
    private static long missingRowsOf(TestDatabase db, String owner, String missing) throws Exception {
        return db.dsl()
                .fetchOne(
                        "select count(*) from outbox.outbox_message m join outbox.outbox_shard_lease l"
                                + " on l.shard = m.shard where m.topic = ? and l.owner = ?",
                        missing,
                        owner)
                .get(0, Long.class);
    }

    private static long parkedOf(TestDatabase db, String topic) {
        return db.dsl()
                .fetchOne("select count(*) from outbox.outbox_message where topic = ? and parked_at is not null", topic)
                .get(0, Long.class);
    }

    /** @return the message ids of the rows on the shards {@code owner} leases */
    private static Set<UUID> messageIdsOn(TestDatabase db, String owner) {
        return new HashSet<>(db.dsl()
                .fetch(
                        "select m.message_id from outbox.outbox_message m join outbox.outbox_shard_lease l"
                                + " on l.shard = m.shard where l.owner = ?",
                        owner)
                .getValues(0, UUID.class));
    }

    /** @return what every reader consumed so far */
    private static List<Records.Received> received(Map<String, Records> readers) {
        return readers.values().stream().flatMap(r -> r.all().stream()).toList();
    }

    private static void createTopic(TestKafka kafka, String topic, boolean transactional) throws Exception {
        try (Admin admin = kafka.admin()) {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1)
                            .configs(
                                    transactional
                                            ? Map.of()
                                            : Map.of("message.timestamp.before.max.ms", TIMESTAMP_BOUND_MS))))
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }
        kafka.createTopic(topic, PARTITIONS); // exists: waits for the leaders
    }

    private static Map<String, String> env(
            TestDatabase db,
            TestKafka kafka,
            String id,
            boolean transactional,
            boolean missingTopic,
            boolean pastHeld) {
        Map<String, String> env = ChildRelay.env(db, kafka.bootstrapServers(), id);
        if (transactional) {
            env.put(RelaySettings.PUBLISH_MODE.envVar(), "transactional");
        }
        env.put("OUTBOX_RELAY_LEASE_DURATION", LEASE.toSeconds() + "s");
        env.put("OUTBOX_RELAY_BATCH_SIZE", pastHeld ? Integer.toString(PAST_HELD_BATCH_SIZE) : "100");
        if (missingTopic) {
            // each failed check of the missing topic counts an attempt of the held rows a shard reads again, at
            // most one per backoff cap (1 s here) and one per check (one per max.block.ms): the default 10 could
            // park them while the topic is missing, and a parked key's later rows go on by design
            // (PARK_AND_CONTINUE), which this test would take for a G3 failure
            env.put(RelaySettings.MAX_ATTEMPTS.envVar(), Integer.toString(Relay.Builder.MAX_MAX_ATTEMPTS));
        }
        // at most about 2 KiB of payloads per batch: with every third payload long, the cap ends most batches
        env.put("OUTBOX_RELAY_BATCH_BYTES", "2KiB");
        return env;
    }
}
