package dev.outbox.consumer.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.reflect.Proxy;
import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The guard that keeps a handler from ending the consumer's transaction: which SQL it refuses wherever it
 * stands in a string (after comments, as a later statement), which it lets through (savepoints, the word
 * inside a string, an identifier, a comment or a dollar-quoted body), and that the connection it hands out
 * checks the SQL of its statements too.
 */
class TransactionGuardTest {

    @ParameterizedTest
    @ValueSource(
            strings = {
                "commit",
                "COMMIT",
                "Commit;",
                "  commit work",
                "commit and chain",
                "end",
                "end transaction",
                "abort",
                "begin",
                "begin isolation level serializable",
                "start transaction",
                "START\n\tTRANSACTION read only",
                "prepare transaction 'x'",
                "commit prepared 'x'",
                "rollback prepared 'x'",
                "rollback",
                "ROLLBACK",
                "rollback work",
                "rollback transaction",
                "rollback and chain",
                "rollback;",
                "/* note */ commit",
                "/* outer /* inner */ still a comment */ commit",
                "-- x\ncommit",
                "-- x\r\ncommit",
                "/**/commit",
                "update t set a = 1; commit",
                "update t set a = 1;commit;",
                "select 'a;b'; commit",
                "select \"x;y\" from t; rollback",
                "select $$ ; $$; end",
                "select $q$ $$ ; $q$; abort",
                "select E'it\\'s; still' ; begin",
                "select 1; -- c\n /* d */ commit",
                ";;commit",
                "savepoint s; rollback",
                "select ';' /* ; */ -- ;\n; commit",
            })
    void refusesTransactionControlAnywhereInTheString(String sql) {
        assertThat(TransactionControl.endsTransaction(sql)).as(sql).isTrue();
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "",
                "   ",
                "-- commit",
                "/* commit */",
                "/* /* nested */ commit */ select 1",
                "select 1",
                "insert into t values ('commit')",
                "insert into t values ('x''; commit')",
                "insert into t values (E'\\'; commit')",
                "select \"commit\" from t",
                "select \"a\"\"; commit\" from t",
                "select $$; commit$$",
                "select $body$ $$; commit $$ $body$",
                "do $$ begin commit; end $$",
                "DO $do$ BEGIN ROLLBACK; END $do$",
                "select $1; select $2::text",
                "select a$b from t; select 1",
                "update committed set ended = true",
                "select commit_ts, end_at, beginning from t",
                "rollback to savepoint s",
                "ROLLBACK TO s",
                "rollback work to savepoint s",
                "rollback transaction to s",
                "rollback /* c */ to s",
                "savepoint s",
                "release savepoint s",
                "release s",
                "prepare q as select 1",
                "start_x",
                "update t set a = 1; savepoint s; release s",
                "select 'commit",
                "select /* commit",
                "select $$ commit",
            })
    void letsOtherSqlThrough(String sql) {
        assertThat(TransactionControl.endsTransaction(sql)).as(sql).isFalse();
    }

    @Test
    void theGuardedConnectionChecksTheSqlOfItsStatements() throws SQLException {
        List<String> ran = new CopyOnWriteArrayList<>();
        Connection guarded = TransactionGuard.guard(connection(ran));

        try (Statement statement = guarded.createStatement()) {
            assertThatThrownBy(() -> statement.execute("commit"))
                    .isInstanceOf(SQLException.class)
                    .hasMessageStartingWith(TransactionGuard.REFUSED)
                    .hasMessageEndingWith("; refused: commit");
            assertThatThrownBy(() -> statement.executeUpdate(" update t set a = 1; commit \n"))
                    .hasMessageEndingWith("; refused: update t set a = 1; commit");
            assertThatThrownBy(() -> statement.executeQuery("/* c */ rollback"))
                    .hasMessageContaining(TransactionGuard.REFUSED);
            assertThatThrownBy(() -> statement.executeLargeUpdate("end"))
                    .hasMessageContaining(TransactionGuard.REFUSED);
            assertThatThrownBy(() -> statement.addBatch("begin")).hasMessageContaining(TransactionGuard.REFUSED);
            statement.execute("savepoint s");
            statement.execute("rollback to savepoint s");
            assertThat(statement.getConnection()).isSameAs(guarded);
            assertThat(statement.unwrap(Statement.class)).isSameAs(statement);
        }
        assertThatThrownBy(() -> guarded.prepareStatement("commit")).hasMessageContaining(TransactionGuard.REFUSED);
        assertThatThrownBy(() -> guarded.prepareStatement("-- x\ncommit", Statement.RETURN_GENERATED_KEYS))
                .hasMessageContaining(TransactionGuard.REFUSED);
        assertThatThrownBy(() -> guarded.prepareCall("commit prepared 'x'"))
                .hasMessageEndingWith("; refused: commit prepared 'x'");
        try (PreparedStatement ps = guarded.prepareStatement("insert into t values ('commit')");
                CallableStatement call = guarded.prepareCall("call p()")) {
            ps.executeUpdate();
            call.execute();
            assertThat(ps.getConnection()).isSameAs(guarded);
            assertThat(call.getConnection()).isSameAs(guarded);
        }
        assertThatThrownBy(guarded::commit).hasMessageContaining(TransactionGuard.REFUSED);
        assertThatThrownBy(guarded::rollback).hasMessageContaining(TransactionGuard.REFUSED);
        assertThatThrownBy(() -> guarded.setAutoCommit(true)).hasMessageContaining(TransactionGuard.REFUSED);
        assertThatThrownBy(guarded::close).hasMessageContaining(TransactionGuard.REFUSED);
        assertThat(guarded.unwrap(Connection.class)).isSameAs(guarded);

        assertThat(ran)
                .containsExactly(
                        "Statement.execute savepoint s",
                        "Statement.execute rollback to savepoint s",
                        "PreparedStatement.executeUpdate insert into t values ('commit')",
                        "CallableStatement.execute call p()");
    }

    /** A connection whose statements record what they run. */
    private static Connection connection(List<String> ran) {
        return (Connection) Proxy.newProxyInstance(
                TransactionGuardTest.class.getClassLoader(),
                new Class<?>[] {Connection.class},
                (proxy, method, args) -> switch (method.getName()) {
                    case "createStatement" -> statement(Statement.class, null, ran);
                    case "prepareStatement" -> statement(PreparedStatement.class, (String) args[0], ran);
                    case "prepareCall" -> statement(CallableStatement.class, (String) args[0], ran);
                    case "unwrap" -> proxy;
                    default -> null;
                });
    }

    private static Object statement(Class<? extends Statement> type, String prepared, List<String> ran) {
        return Proxy.newProxyInstance(
                TransactionGuardTest.class.getClassLoader(), new Class<?>[] {type}, (proxy, method, args) -> {
                    switch (method.getName()) {
                        case "execute", "executeQuery", "executeUpdate", "executeLargeUpdate" -> {
                            ran.add(type.getSimpleName() + "." + method.getName() + " "
                                    + (args == null ? prepared : args[0]));
                            return nothingDone(method.getReturnType());
                        }
                        default -> {
                            return null;
                        }
                    }
                });
    }

    private static Object nothingDone(Class<?> returnType) {
        if (returnType == boolean.class) {
            return Boolean.FALSE;
        }
        if (returnType == int.class) {
            return 0;
        }
        if (returnType == long.class) {
            return 0L;
        }
        return null;
    }
}
