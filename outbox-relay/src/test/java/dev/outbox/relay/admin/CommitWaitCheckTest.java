package dev.outbox.relay.admin;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.relay.admin.CommitWaitCheck.Level;
import dev.outbox.relay.admin.CommitWaitCheck.Names;
import dev.outbox.relay.admin.CommitWaitCheck.Sender;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * How {@code commit-waits} reads {@code synchronous_standby_names} and {@code synchronous_commit} and
 * decides, from the senders {@code pg_stat_replication} shows, whether a commit waits forever: the
 * cases of the names' grammar and of quorum commit that the integration tests on a real server do not
 * reach (they run {@code FIRST 1}).
 */
class CommitWaitCheckTest {
    private static final Sender RECEIVER = new Sender(1, "pg_receivewal", "streaming", "sync", true, true, false);
    private static final Sender STANDBY = new Sender(2, "standby_a", "streaming", "sync", true, true, true);

    /** The three forms PostgreSQL accepts, keywords in any case; a plain list is FIRST 1. */
    @ParameterizedTest
    @CsvSource(
            delimiter = '|',
            value = {
                "s1|FIRST 1",
                "s1, s2|FIRST 1",
                "*|FIRST 1",
                "2 (s1, s2)|FIRST 2",
                "FIRST 2 (s1, s2, s3)|FIRST 2",
                "first 1(s1)|FIRST 1",
                "ANY 2 (s1, \"s 2\", s3)|ANY 2",
                "any 1 (*)|ANY 1"
            })
    void namesAreReadAsPostgresqlReadsThem(String names, String read) {
        assertThat(Names.parse(names)).hasToString(read);
    }

    /** synchronous_commit as PostgreSQL keeps it in a role's settings: as written, boolean spellings included. */
    @Test
    void levelsInEverySpelling() {
        for (String on : List.of("on", "ON", "true", "yes", "1")) {
            assertThat(Level.of(on)).as(on).isEqualTo(Level.ON);
        }
        assertThat(Level.of("remote_apply")).isEqualTo(Level.REMOTE_APPLY);
        assertThat(Level.of("Remote_Write")).isEqualTo(Level.REMOTE_WRITE);
        for (String none : List.of("local", "off", "false", "no", "0")) {
            assertThat(Level.of(none)).as(none).isNull();
        }
    }

    /**
     * FIRST n waits for every chosen sender: a WAL receiver among them hangs remote_apply, not on; fewer
     * connected than n hangs every level.
     */
    @Test
    void firstWaitsForEachChosenSender() {
        Names first1 = Names.parse("pg_receivewal");
        assertThat(CommitWaitCheck.hangs(Level.REMOTE_APPLY, first1, List.of(RECEIVER)))
                .contains("pg_receivewal report no replayed position");
        assertThat(CommitWaitCheck.hangs(Level.ON, first1, List.of(RECEIVER))).isNull();
        assertThat(CommitWaitCheck.hangs(
                        Level.REMOTE_APPLY,
                        Names.parse("FIRST 2 (pg_receivewal, standby_a)"),
                        List.of(RECEIVER, STANDBY)))
                .contains("pg_receivewal report no replayed position");
        assertThat(CommitWaitCheck.hangs(Level.ON, Names.parse("FIRST 2 (standby_a, standby_b)"), List.of(STANDBY)))
                .isEqualTo("only 1 synchronous sender(s) connected of the 2 the names ask for");
    }

    /** ANY n waits for any n of the quorum: a standby that replays beside a WAL receiver is enough for ANY 1. */
    @Test
    void anyWaitsForEnoughOfTheQuorum() {
        Sender receiver = new Sender(1, "pg_receivewal", "streaming", "quorum", true, true, false);
        Sender standby = new Sender(2, "standby_a", "streaming", "quorum", true, true, true);
        List<Sender> both = List.of(receiver, standby);
        assertThat(CommitWaitCheck.hangs(Level.REMOTE_APPLY, Names.parse("ANY 1 (pg_receivewal, standby_a)"), both))
                .isNull();
        assertThat(CommitWaitCheck.hangs(Level.REMOTE_APPLY, Names.parse("ANY 2 (pg_receivewal, standby_a)"), both))
                .isEqualTo("1 of the 2 quorum sender(s) report a replayed position, and 2 must (not pg_receivewal)");
        assertThat(CommitWaitCheck.hangs(Level.ON, Names.parse("ANY 2 (pg_receivewal, standby_a)"), both))
                .isNull();
    }

    /** A sender not chosen (not named, or reporting no flushed position) confirms nothing. */
    @Test
    void noSynchronousSenderHangsEveryLevel() {
        Sender async = new Sender(3, "other", "streaming", "async", true, false, false);
        for (Level level : Level.values()) {
            assertThat(CommitWaitCheck.hangs(level, Names.parse("s1"), List.of(async)))
                    .startsWith("no connected sender is synchronous");
            assertThat(CommitWaitCheck.hangs(level, Names.parse("s1"), List.of()))
                    .isEqualTo("no WAL sender is connected, and FIRST 1 must confirm");
        }
    }
}
