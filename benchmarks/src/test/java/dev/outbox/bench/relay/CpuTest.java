package dev.outbox.bench.relay;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

/** The CPU accounts the relay benchmark's comparison relies on. */
class CpuTest {
    private static volatile long sink;

    @Test
    void threadCpuSinceCountsAThreadStartedInBetweenFromZeroAndLeavesOutOthers() throws Exception {
        Map<Long, Long> before = Map.of(1L, 5_000_000L);
        Map<Long, Long> after = Map.of(1L, 7_000_000L, 2L, 3_000_000L);
        // thread 1 used 2 ms since, thread 2 (new) 3 ms; a thread that ended is in neither sum
        assertThat(Cpu.threadCpuSince(before, after)).isEqualTo(0.005);
    }

    @Test
    void threadCpuByIdKeepsOnlyTheNamedThreads() throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        Thread busy = new Thread(
                () -> {
                    long end = System.nanoTime() + 50_000_000L;
                    long x = 0;
                    while (System.nanoTime() < end) {
                        x += System.nanoTime() % 7;
                    }
                    done.countDown();
                    try {
                        Thread.sleep(10_000);
                    } catch (InterruptedException e) {
                        // the test is over
                    }
                    sink = x;
                },
                "counted-by-name");
        busy.start();
        try {
            done.await();
            Map<Long, Long> counted = Cpu.threadCpuById(name -> name.equals("counted-by-name"));
            assertThat(counted).containsOnlyKeys(busy.threadId());
            assertThat(counted.get(busy.threadId())).isPositive();
        } finally {
            busy.interrupt();
        }
    }

    @Test
    void aServerThatIsNotRunningCostsNothing() {
        // no process has this pid, and none has it as its parent
        assertThat(Cpu.instanceCpuSeconds(Long.MAX_VALUE)).isZero();
    }

    @Test
    void latenciesShowMedianP99AndMaxOfWhatWasSent() {
        double[] sorted = new double[100];
        for (int i = 0; i < 100; i++) {
            sorted[i] = i + 1;
        }
        assertThat(Report.latencies(sorted, 101, " ms")).isEqualTo("50.0 / 99.0 / 100.0 ms (100 of 101)");
    }
}
