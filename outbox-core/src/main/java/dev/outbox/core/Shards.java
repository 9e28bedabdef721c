package dev.outbox.core;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Objects;
import java.util.UUID;
import java.util.zip.CRC32C;

/**
 * The shard function: {@code shard = CRC-32C(UTF-8(message_key)) mod shardCount}; a message without
 * a key hashes its message id (the 16 big-endian bytes) instead.
 *
 * <p>Shards are the unit of ordering and of scale-out: one relay at a time owns a shard and
 * publishes its rows in id order, so every message of one key leaves in commit order. The
 * function is part of the storage format: changing it, or the shard count, after rows exist would
 * split a key's messages across two shards and lose their order.
 */
public final class Shards {
    /** The default number of shards, fixed at install time by the migration placeholder. */
    public static final int DEFAULT_COUNT = 64;

    /** The largest shard count the migrations accept. */
    public static final int MAX_COUNT = 4096;

    private Shards() {}

    /**
     * @param key the message key, or {@code null}
     * @param messageId the message id, used when {@code key} is null
     * @param shardCount the installed shard count
     * @return the shard in {@code [0, shardCount)}
     * @throws IllegalArgumentException when {@code shardCount} is outside {@code [1, MAX_COUNT]}
     */
    public static int of(String key, UUID messageId, int shardCount) {
        checkCount(shardCount, "shardCount");
        CRC32C crc = new CRC32C();
        if (key != null) {
            crc.update(key.getBytes(StandardCharsets.UTF_8));
        } else {
            Objects.requireNonNull(messageId, "messageId may not be null when key is null");
            ByteBuffer b = ByteBuffer.allocate(16);
            b.putLong(messageId.getMostSignificantBits()).putLong(messageId.getLeastSignificantBits());
            crc.update(b.array());
        }
        return (int) (crc.getValue() % shardCount);
    }

    static int checkCount(int shardCount, String name) {
        if (shardCount < 1 || shardCount > MAX_COUNT) {
            throw new IllegalArgumentException(name + " must be between 1 and " + MAX_COUNT + ", got " + shardCount
                    + "; use the value the migrations were installed with (placeholder outbox_shards, default "
                    + DEFAULT_COUNT + ")");
        }
        return shardCount;
    }
}
