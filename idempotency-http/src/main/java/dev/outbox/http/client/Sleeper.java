package dev.outbox.http.client;

import java.time.Duration;

/** Waits between attempts. Tests inject one that records the delays instead of waiting. */
@FunctionalInterface
public interface Sleeper {
    /**
     * @param delay how long to wait
     * @throws InterruptedException when the thread is interrupted while waiting
     */
    void sleep(Duration delay) throws InterruptedException;

    /** @return a sleeper that blocks the calling thread (cheap on virtual threads) */
    static Sleeper threadSleep() {
        return delay -> Thread.sleep(delay);
    }
}
