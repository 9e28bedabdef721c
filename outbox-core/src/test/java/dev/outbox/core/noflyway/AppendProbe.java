package dev.outbox.core.noflyway;

import dev.outbox.core.Outbox;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Properties;
import java.util.function.Function;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.postgresql.Driver;

/**
 * Appends one JSON message with outbox-core, run by {@code WithoutFlywayIT} in a class loader that
 * has no Flyway. Argument: JDBC URL, user; result: the message id.
 */
public final class AppendProbe implements Function<String[], String> {

    /** A record for the JSON payload. */
    public record Ping(String text) {}

    @Override
    public String apply(String[] urlAndUser) {
        Properties props = new Properties();
        props.setProperty("user", urlAndUser[1]);
        // the driver of this class loader: DriverManager only hands out drivers its caller's loader sees
        try (Connection c = new Driver().connect(urlAndUser[0], props)) {
            DSLContext dsl = DSL.using(c, SQLDialect.POSTGRES);
            Outbox outbox = Outbox.builder().build();
            return dsl.transactionResult(tx ->
                    outbox.appendJson(tx.dsl(), "pings", "k", new Ping("hello")).toString());
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }
}
