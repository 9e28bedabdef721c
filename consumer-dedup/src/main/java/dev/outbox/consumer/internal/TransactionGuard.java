package dev.outbox.consumer.internal;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.regex.Pattern;
import org.jooq.ExecuteContext;
import org.jooq.ExecuteListener;
import org.jooq.exception.DataAccessException;

/**
 * Keeps a handler from ending the consumer's transaction. The processed ids of a batch are inserted
 * before its handlers run and commit with their writes: a handler that committed (or rolled back)
 * in the middle would commit the ids of the records after it before they are handled, and a later
 * failure would then lose them, as duplicates on the retry. Refused, with an error that says so:
 * transaction-control SQL through {@code tx} ({@code commit}, {@code rollback} other than to a
 * savepoint, {@code end}, {@code abort}, {@code begin}, {@code start transaction}, {@code prepare
 * transaction}), and {@code commit()}, {@code rollback()}, {@code setAutoCommit(true)}, {@code
 * close()} and {@code abort(...)} on the connection {@code tx} hands out. Savepoints, and
 * {@code tx.transaction(...)} (a savepoint), stay allowed.
 */
final class TransactionGuard implements ExecuteListener {
    private static final Pattern TRANSACTION_CONTROL = Pattern.compile(
            "\\s*(?:commit|end|abort|begin|start\\s+transaction|prepare\\s+transaction"
                    + "|rollback(?!\\s+(?:work\\s+|transaction\\s+)?to\\b))\\b",
            Pattern.CASE_INSENSITIVE);

    static final String REFUSED = "a handler may not end the consumer's transaction: its processed ids and writes"
            + " commit together once it returns (a commit inside it would commit the ids of the records after it"
            + " before they are handled); use tx.transaction(...) for a part that may fail on its own (a savepoint),"
            + " or throw to fail the record";

    @Override
    public void executeStart(ExecuteContext ctx) {
        String sql = ctx.sql();
        if (sql != null && TRANSACTION_CONTROL.matcher(sql).lookingAt()) {
            throw new DataAccessException(REFUSED + "; refused: " + sql.strip());
        }
    }

    /** @return {@code connection}, refusing to end its transaction or to be closed by the handler */
    static Connection guard(Connection connection) {
        return (Connection) Proxy.newProxyInstance(
                TransactionGuard.class.getClassLoader(), new Class<?>[] {Connection.class}, (proxy, method, args) -> {
                    switch (method.getName()) {
                        case "commit", "close", "abort" -> {
                            throw new SQLException(REFUSED + "; refused: Connection." + method.getName() + "()");
                        }
                        case "rollback" -> {
                            if (args == null || args.length == 0) {
                                throw new SQLException(REFUSED + "; refused: Connection.rollback()");
                            }
                        }
                        case "setAutoCommit" -> {
                            if (Boolean.TRUE.equals(args[0])) {
                                throw new SQLException(REFUSED + "; refused: Connection.setAutoCommit(true)");
                            }
                        }
                        case "unwrap" -> {
                            if (args[0] == Connection.class) {
                                return proxy;
                            }
                        }
                        default -> {
                            // passed on
                        }
                    }
                    try {
                        return method.invoke(connection, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }
}
