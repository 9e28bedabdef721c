package dev.outbox.consumer.internal;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import org.jooq.ExecuteContext;
import org.jooq.ExecuteListener;
import org.jooq.exception.DataAccessException;

/**
 * Keeps a handler from ending the consumer's transaction. The processed ids of a batch are inserted
 * before its handlers run and commit with their writes: a handler that committed (or rolled back)
 * in the middle would commit the ids of the records after it before they are handled, and a later
 * failure would then lose them, as duplicates on the retry. Refused, with an error that says so:
 * transaction-control SQL ({@code commit}, {@code commit prepared}, {@code rollback} other than to a
 * savepoint, {@code rollback prepared}, {@code end}, {@code abort}, {@code begin}, {@code start
 * transaction}, {@code prepare transaction}) anywhere in a SQL string, after comments or as a later
 * statement of several ({@link TransactionControl}), whether it runs through {@code tx} or through
 * the connection {@code tx} hands out ({@code createStatement()}, {@code prepareStatement(sql)},
 * {@code prepareCall(sql)}: refused when prepared, or when a plain statement executes or batches it);
 * and {@code commit()}, {@code rollback()}, {@code setAutoCommit(true)}, {@code close()} and {@code
 * abort(...)} on that connection. Its statements' {@code getConnection()} is the guarded connection.
 * Savepoints, and {@code tx.transaction(...)} (a savepoint), stay allowed.
 */
final class TransactionGuard implements ExecuteListener {
    static final String REFUSED = "a handler may not end the consumer's transaction: its processed ids and writes"
            + " commit together once it returns (a commit inside it would commit the ids of the records after it"
            + " before they are handled); use tx.transaction(...) for a part that may fail on its own (a savepoint),"
            + " or throw to fail the record";

    @Override
    public void executeStart(ExecuteContext ctx) {
        String sql = ctx.sql();
        if (sql != null && TransactionControl.endsTransaction(sql)) {
            throw new DataAccessException(refusal(sql));
        }
        String[] batch = ctx.batchSQL();
        if (batch != null && batch.length > 1) {
            for (String each : batch) {
                if (each != null && TransactionControl.endsTransaction(each)) {
                    throw new DataAccessException(refusal(each));
                }
            }
        }
    }

    private static String refusal(String sql) {
        return REFUSED + "; refused: " + sql.strip();
    }

    private static void check(String sql) throws SQLException {
        if (sql != null && TransactionControl.endsTransaction(sql)) {
            throw new SQLException(refusal(sql));
        }
    }

    /**
     * @return {@code connection}, refusing to end its transaction or to be closed by the handler, and
     *     handing out statements that refuse transaction-control SQL
     */
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
                        case "createStatement" -> {
                            return guard((Statement) invoke(connection, method, args), Statement.class, proxy);
                        }
                        case "prepareStatement" -> {
                            check((String) args[0]);
                            return guard(
                                    (PreparedStatement) invoke(connection, method, args),
                                    PreparedStatement.class,
                                    proxy);
                        }
                        case "prepareCall" -> {
                            check((String) args[0]);
                            return guard(
                                    (CallableStatement) invoke(connection, method, args),
                                    CallableStatement.class,
                                    proxy);
                        }
                        default -> {
                            // passed on
                        }
                    }
                    return invoke(connection, method, args);
                });
    }

    /**
     * @return {@code statement}, refusing transaction-control SQL passed to it, its {@code
     *     getConnection()} being {@code guardedConnection}
     */
    private static <S extends Statement> S guard(S statement, Class<S> type, Object guardedConnection) {
        return type.cast(Proxy.newProxyInstance(
                TransactionGuard.class.getClassLoader(), new Class<?>[] {type}, (proxy, method, args) -> {
                    switch (method.getName()) {
                        case "getConnection" -> {
                            return guardedConnection;
                        }
                        case "execute", "executeQuery", "executeUpdate", "executeLargeUpdate", "addBatch" -> {
                            if (args != null && args.length > 0 && args[0] instanceof String sql) {
                                check(sql);
                            }
                        }
                        case "unwrap" -> {
                            if (args[0] instanceof Class<?> wanted && wanted.isInstance(proxy)) {
                                return proxy;
                            }
                        }
                        default -> {
                            // passed on
                        }
                    }
                    return invoke(statement, method, args);
                }));
    }

    private static Object invoke(Object target, Method method, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
