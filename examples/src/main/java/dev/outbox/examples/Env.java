package dev.outbox.examples;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.util.List;
import java.util.Map;

/** Environment settings of the example services when they run on their own (docker compose). */
final class Env {
    static final String JDBC_URL = "SHOP_JDBC_URL";
    static final String DB_USER = "SHOP_DB_USER";
    static final String DB_PASSWORD = "SHOP_DB_PASSWORD";
    static final String HTTP_PORT = "SHOP_HTTP_PORT";
    static final String KAFKA_BOOTSTRAP = "SHOP_KAFKA_BOOTSTRAP";

    /** Every variable the services read; the compose file may use no other SHOP_ name. */
    static final List<String> ALL = List.of(JDBC_URL, DB_USER, DB_PASSWORD, HTTP_PORT, KAFKA_BOOTSTRAP);

    private Env() {}

    static String require(Map<String, String> env, String name, String example) {
        String v = env.get(name);
        if (v == null || v.isBlank()) {
            System.err.println("Missing environment variable " + name + ": set it, e.g. " + name + "=" + example);
            System.exit(2);
        }
        return v;
    }

    static HikariDataSource dataSource(Map<String, String> env, int poolSize) {
        HikariConfig c = new HikariConfig();
        c.setJdbcUrl(require(env, JDBC_URL, "jdbc:postgresql://postgres:5432/shop"));
        c.setUsername(env.getOrDefault(DB_USER, "postgres"));
        c.setPassword(env.get(DB_PASSWORD));
        c.setMaximumPoolSize(poolSize);
        c.setInitializationFailTimeout(30_000);
        return new HikariDataSource(c);
    }
}
