package dev.outbox.consumer.internal;

/**
 * Finds a PostgreSQL transaction-control statement anywhere in a SQL string, in one pass and without
 * allocating (a dollar-quote tag aside). The string is split into statements on {@code ;} outside
 * comments ({@code --} line comments and block comments, which nest), string constants ({@code '...'} with {@code ''},
 * {@code E'...'} with backslash escapes), quoted identifiers ({@code "..."}) and dollar-quoted strings
 * ({@code $$...$$}, {@code $tag$...$tag$}); each statement's leading keywords decide. Transaction
 * control: {@code commit} (and {@code commit prepared}), {@code end}, {@code abort}, {@code begin},
 * {@code start transaction}, {@code prepare transaction}, and {@code rollback} (and {@code rollback
 * prepared}) unless it is {@code rollback [work | transaction] to} a savepoint. {@code savepoint} and
 * {@code release} are not. Text inside a dollar quote is a body, not a statement: a {@code DO} block or
 * a procedure that commits is refused by PostgreSQL itself inside a transaction block ("invalid
 * transaction termination").
 */
final class TransactionControl {
    private TransactionControl() {}

    /** @return whether {@code sql} holds a statement that would end or start a transaction */
    static boolean endsTransaction(CharSequence sql) {
        int n = sql.length();
        int i = skipBlank(sql, 0);
        boolean statementStart = true;
        while (i < n) {
            char c = sql.charAt(i);
            if (c == ';') {
                statementStart = true;
                i = skipBlank(sql, i + 1);
                continue;
            }
            if (isIdentifierStart(c)) {
                int end = identifierEnd(sql, i);
                if (statementStart && isTransactionControl(sql, i, end)) {
                    return true;
                }
                statementStart = false;
                if (end == i + 1 && (c == 'e' || c == 'E') && end < n && sql.charAt(end) == '\'') {
                    i = skipQuoted(sql, end, '\'', true);
                } else {
                    i = end;
                }
            } else {
                statementStart = false;
                i = switch (c) {
                    case '\'' -> skipQuoted(sql, i, '\'', false);
                    case '"' -> skipQuoted(sql, i, '"', false);
                    case '$' -> skipDollar(sql, i);
                    default -> i + 1;
                };
            }
            i = skipBlank(sql, i);
        }
        return false;
    }

    /** Whether the statement whose first word is {@code sql[start, end)} is transaction control. */
    private static boolean isTransactionControl(CharSequence sql, int start, int end) {
        if (is(sql, start, end, "commit")
                || is(sql, start, end, "end")
                || is(sql, start, end, "abort")
                || is(sql, start, end, "begin")) {
            return true;
        }
        if (is(sql, start, end, "start") || is(sql, start, end, "prepare")) {
            int next = skipBlank(sql, end);
            return is(sql, next, identifierEnd(sql, next), "transaction");
        }
        if (is(sql, start, end, "rollback")) {
            int next = skipBlank(sql, end);
            int nextEnd = identifierEnd(sql, next);
            if (is(sql, next, nextEnd, "work") || is(sql, next, nextEnd, "transaction")) {
                next = skipBlank(sql, nextEnd);
                nextEnd = identifierEnd(sql, next);
            }
            return !is(sql, next, nextEnd, "to");
        }
        return false;
    }

    private static boolean is(CharSequence sql, int start, int end, String keyword) {
        int length = keyword.length();
        if (end - start != length) {
            return false;
        }
        for (int k = 0; k < length; k++) {
            char c = sql.charAt(start + k);
            char lower = c >= 'A' && c <= 'Z' ? (char) (c + ('a' - 'A')) : c;
            if (lower != keyword.charAt(k)) {
                return false;
            }
        }
        return true;
    }

    /** @return the index after the whitespace and comments from {@code i} */
    private static int skipBlank(CharSequence sql, int i) {
        int n = sql.length();
        while (i < n) {
            char c = sql.charAt(i);
            if (Character.isWhitespace(c)) {
                i++;
            } else if (c == '-' && i + 1 < n && sql.charAt(i + 1) == '-') {
                i += 2;
                while (i < n && sql.charAt(i) != '\n' && sql.charAt(i) != '\r') {
                    i++;
                }
            } else if (c == '/' && i + 1 < n && sql.charAt(i + 1) == '*') {
                i = skipBlockComment(sql, i + 2);
            } else {
                return i;
            }
        }
        return n;
    }

    /** PostgreSQL block comments nest. */
    private static int skipBlockComment(CharSequence sql, int i) {
        int n = sql.length();
        int depth = 1;
        while (i < n) {
            char c = sql.charAt(i);
            if (c == '*' && i + 1 < n && sql.charAt(i + 1) == '/') {
                i += 2;
                if (--depth == 0) {
                    return i;
                }
            } else if (c == '/' && i + 1 < n && sql.charAt(i + 1) == '*') {
                i += 2;
                depth++;
            } else {
                i++;
            }
        }
        return n;
    }

    /** @return the index after the constant or identifier opened by {@code quote} at {@code i} */
    private static int skipQuoted(CharSequence sql, int i, char quote, boolean backslashEscapes) {
        int n = sql.length();
        i++;
        while (i < n) {
            char c = sql.charAt(i);
            if (backslashEscapes && c == '\\') {
                i += 2;
            } else if (c == quote) {
                if (i + 1 < n && sql.charAt(i + 1) == quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            } else {
                i++;
            }
        }
        return n;
    }

    /** At a {@code $}: a dollar-quoted string ({@code $$} or {@code $tag$}), or a parameter such as {@code $1}. */
    private static int skipDollar(CharSequence sql, int i) {
        int n = sql.length();
        int tagEnd = i + 1;
        if (tagEnd < n && isIdentifierStart(sql.charAt(tagEnd))) {
            while (tagEnd < n && isTagPart(sql.charAt(tagEnd))) {
                tagEnd++;
            }
        }
        if (tagEnd >= n || sql.charAt(tagEnd) != '$') {
            return i + 1;
        }
        int tagLength = tagEnd + 1 - i;
        int close = indexOf(sql, i, tagLength, tagEnd + 1);
        return close < 0 ? n : close + tagLength;
    }

    /** @return where {@code sql[tag, tag + length)} next occurs from {@code from}, or -1 */
    private static int indexOf(CharSequence sql, int tag, int length, int from) {
        int last = sql.length() - length;
        for (int j = from; j <= last; j++) {
            if (sql.charAt(j) == '$' && regionEquals(sql, tag, j, length)) {
                return j;
            }
        }
        return -1;
    }

    private static boolean regionEquals(CharSequence sql, int a, int b, int length) {
        for (int k = 0; k < length; k++) {
            if (sql.charAt(a + k) != sql.charAt(b + k)) {
                return false;
            }
        }
        return true;
    }

    private static int identifierEnd(CharSequence sql, int i) {
        int n = sql.length();
        if (i >= n || !isIdentifierStart(sql.charAt(i))) {
            return i;
        }
        i++;
        while (i < n && (isTagPart(sql.charAt(i)) || sql.charAt(i) == '$')) {
            i++;
        }
        return i;
    }

    private static boolean isIdentifierStart(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
    }

    private static boolean isTagPart(char c) {
        return isIdentifierStart(c) || (c >= '0' && c <= '9');
    }
}
