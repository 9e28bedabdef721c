package dev.outbox.relay.process;

import dev.outbox.testkit.TestDatabase;
import java.io.IOException;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Starts the relay process inside the test JVM, through the same settings resolution as the command line. */
final class InProcess {
    private InProcess() {}

    static Map<String, String> flags(TestDatabase db, String bootstrap, String instanceId) {
        Map<String, String> f = new LinkedHashMap<>();
        f.put("jdbc-url", db.jdbcUrl());
        f.put("db-user", db.user());
        f.put("db-password", db.password());
        f.put("bootstrap-servers", bootstrap);
        f.put("instance-id", instanceId);
        f.put("http-port", "0");
        f.put("lease-duration", "3s");
        f.put("idle-poll-interval", "200ms");
        f.put("backoff-base", "50ms");
        f.put("backoff-cap", "1s");
        return f;
    }

    static RelayProcess start(Map<String, String> flags) {
        return RelayProcess.start(RelaySettings.resolve(flags, Map.of(), Map.of(), "", true), false);
    }

    /** The command-line form of the database flags, for the admin commands. */
    static String[] dbArgs(TestDatabase db, String... command) {
        List<String> args = new ArrayList<>(List.of(command));
        args.add("--jdbc-url=" + db.jdbcUrl());
        args.add("--db-user=" + db.user());
        args.add("--db-password=" + db.password());
        return args.toArray(String[]::new);
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
