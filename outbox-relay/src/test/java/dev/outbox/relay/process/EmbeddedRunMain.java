package dev.outbox.relay.process;

import java.util.Map;

/**
 * A JVM that runs the relay's {@code run} command through {@link Main#run} (not {@link Main#main}),
 * prints its exit code and ends by itself, as an application or a test embedding the command does.
 */
public final class EmbeddedRunMain {
    private EmbeddedRunMain() {}

    public static void main(String[] args) {
        int code = Main.run(args, Map.of(), System.out, System.err);
        System.out.println("Main.run returned " + code);
        System.out.flush();
    }
}
