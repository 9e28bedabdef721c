package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

/** The backlog gauge counts up to {@link Db#BACKLOG_COUNTED} rows per shard and extrapolates beyond. */
class BacklogEstimateTest {

    @Test
    void belowTheCapTheCountIsExact() {
        assertThat(Db.estimate(17, 100, 900, 900)).isEqualTo(17);
        assertThat(Db.estimate(0, 0, 0, 0)).isZero();
    }

    @Test
    void atTheCapTheRestIsEstimatedFromTheDensityOfTheCountedIds() {
        int n = Db.BACKLOG_COUNTED;
        // the shard holds every 64th id: the counted rows span 64 * n ids, the rest of the span as many again
        long first = 64;
        long lastCounted = 64L * n;
        long max = 64L * 2 * n;
        assertThat(Db.estimate(n, first, lastCounted, max)).isCloseTo(2.0 * n, within(1.0));
    }

    @Test
    void aCappedCountWhoseLastRowIsTheNewestIsExact() {
        assertThat(Db.estimate(Db.BACKLOG_COUNTED, 1, 5_000, 5_000)).isEqualTo(Db.BACKLOG_COUNTED);
    }
}
