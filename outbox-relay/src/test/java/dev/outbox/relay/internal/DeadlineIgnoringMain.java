package dev.outbox.relay.internal;

import dev.outbox.relay.process.Main;

/**
 * The relay process with its local lease deadline turned off ({@link
 * LeaseClock#ignoreDeadlineForTests}): a zombie that sends whatever it holds when it wakes, so that a
 * test shows what the transactional mode's broker-side fence alone keeps out.
 */
public final class DeadlineIgnoringMain {
    private DeadlineIgnoringMain() {}

    public static void main(String[] args) throws Exception {
        LeaseClock.ignoreDeadlineForTests = true;
        Main.main(args);
    }
}
