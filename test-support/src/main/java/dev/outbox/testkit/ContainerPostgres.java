package dev.outbox.testkit;

import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.PostgreSQLContainer;

/** PostgreSQL in a Testcontainers container, tried only when a Docker engine answers. */
final class ContainerPostgres {
    private static PostgreSQLContainer<?> container;

    private ContainerPostgres() {}

    static synchronized PostgresServer start() {
        if (!DockerClientFactory.instance().isDockerAvailable()) {
            throw new IllegalStateException("no Docker engine answers");
        }
        if (container == null) {
            PostgreSQLContainer<?> c = new PostgreSQLContainer<>("postgres:15-alpine");
            c.start();
            Runtime.getRuntime().addShutdownHook(new Thread(c::stop, "testkit-postgres-container-stop"));
            container = c;
        }
        return new PostgresServer(
                "Testcontainers",
                container.getHost(),
                container.getMappedPort(PostgreSQLContainer.POSTGRESQL_PORT),
                container.getUsername(),
                container.getPassword(),
                container.getDatabaseName());
    }
}
