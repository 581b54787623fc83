package dev.fvdisk.objectstore;

import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.ResponseBytes;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.retry.RetryMode;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.NoSuchBucketException;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.PutObjectResponse;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * An {@link ObjectStore} in an S3 bucket, through the AWS SDK v2 with the JDK's HTTP client.
 *
 * <p>Set up for Ceph RGW 16 as much as for AWS: path-style addresses; checksums only where an
 * operation requires them (RGW 16 refuses the SDK's default trailing checksums); every call has a
 * deadline, as requests to RGW hang rather than fail while its OSD is down. The CRC-32C travels as
 * user metadata ({@code x-amz-meta-crc32c}), so any S3 implementation keeps it. Keys are stored
 * under a prefix, so several deployments may share a bucket.
 */
public final class S3ObjectStore implements ObjectStore, AutoCloseable {

  private static final String CRC_METADATA = "crc32c";

  /**
   * Where the bucket is and how long a call may take.
   *
   * @param callTimeout the most one operation may take, retries included
   * @param attemptTimeout the most one attempt may take
   */
  public record Settings(
      URI endpoint,
      String region,
      String bucket,
      String prefix,
      String accessKey,
      String secretKey,
      Duration callTimeout,
      Duration attemptTimeout) {}

  private final S3Client s3;
  private final String bucket;
  private final String prefix;

  private S3ObjectStore(S3Client s3, String bucket, String prefix) {
    this.s3 = s3;
    this.bucket = bucket;
    this.prefix = prefix;
  }

  /** Connects, and creates the bucket if it does not exist. */
  public static S3ObjectStore open(Settings settings) throws IOException {
    S3Client s3 =
        S3Client.builder()
            .endpointOverride(settings.endpoint())
            .region(Region.of(settings.region()))
            .credentialsProvider(
                StaticCredentialsProvider.create(
                    AwsBasicCredentials.create(settings.accessKey(), settings.secretKey())))
            .forcePathStyle(true)
            .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
            .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
            .httpClientBuilder(
                UrlConnectionHttpClient.builder()
                    .connectionTimeout(Duration.ofSeconds(2))
                    .socketTimeout(settings.attemptTimeout()))
            .overrideConfiguration(
                c ->
                    c.apiCallTimeout(settings.callTimeout())
                        .apiCallAttemptTimeout(settings.attemptTimeout())
                        .retryStrategy(RetryMode.STANDARD))
            .build();
    S3ObjectStore store = new S3ObjectStore(s3, settings.bucket(), settings.prefix());
    store.ensureBucket();
    return store;
  }

  private void ensureBucket() throws IOException {
    try {
      s3.headBucket(b -> b.bucket(bucket));
    } catch (NoSuchBucketException e) {
      call(() -> s3.createBucket(b -> b.bucket(bucket)));
    } catch (SdkException e) {
      if (e instanceof S3Exception s && s.statusCode() == 404) {
        call(() -> s3.createBucket(b -> b.bucket(bucket)));
      } else {
        throw unavailable("head bucket " + bucket, e);
      }
    }
  }

  @Override
  public void put(String key, ByteBuffer data) throws IOException {
    String crc = Crc32c.of(data);
    call(
        () ->
            s3.putObject(
                b -> b.bucket(bucket).key(prefix + key).metadata(Map.of(CRC_METADATA, crc)),
                body(data)));
  }

  @Override
  public boolean putIfAbsent(String key, ByteBuffer data) throws IOException {
    String crc = Crc32c.of(data);
    try {
      s3.putObject(
          b ->
              b.bucket(bucket)
                  .key(prefix + key)
                  .ifNoneMatch("*")
                  .metadata(Map.of(CRC_METADATA, crc)),
          body(data));
      return true;
    } catch (S3Exception e) {
      if (e.statusCode() == 412) {
        // A 412 can answer this call's own retry: its first attempt stored the object but the
        // answer was lost. The object then holds exactly these bytes. Callers that race make
        // their data unique (a writer token), so equal bytes mean this call's object.
        ByteBuffer existing = get(key);
        return existing != null && existing.equals(data.duplicate());
      }
      throw unavailable("put " + key, e);
    } catch (SdkException e) {
      throw unavailable("put " + key, e);
    }
  }

  @Override
  public @Nullable String putIfTag(String key, ByteBuffer data, @Nullable String expectedTag)
      throws IOException {
    String crc = Crc32c.of(data);
    try {
      PutObjectResponse put =
          s3.putObject(
              b -> {
                b.bucket(bucket).key(prefix + key).metadata(Map.of(CRC_METADATA, crc));
                if (expectedTag == null) {
                  b.ifNoneMatch("*");
                } else {
                  // RGW 16 compares If-Match with the bare tag: a quoted one never matches.
                  b.ifMatch(expectedTag);
                }
              },
              body(data));
      return unquoted(put.eTag());
    } catch (S3Exception e) {
      // 412: another version is there. RGW answers If-Match on a missing key with 412 and S3 with
      // 404; both mean the condition failed. As in putIfAbsent, equal bytes are this call's own
      // earlier attempt.
      if (e.statusCode() == 412 || e.statusCode() == 404) {
        Tagged there = getTagged(key);
        return there != null && there.data().equals(data.duplicate()) ? there.tag() : null;
      }
      if (e.statusCode() >= 500) {
        // RGW 16 answers some of several conditional puts racing on one key with a 500 (its
        // head-object update lost a race). What the key holds now tells who won.
        return settleRace(key, data, expectedTag, e);
      }
      throw unavailable("put " + key, e);
    } catch (SdkException e) {
      throw unavailable("put " + key, e);
    }
  }

  /**
   * Decides a conditional put that failed without saying why: this call won if the key holds its
   * bytes, lost if another version replaced the expected one, and failed if nothing changed.
   */
  private @Nullable String settleRace(
      String key, ByteBuffer data, @Nullable String expectedTag, S3Exception failure)
      throws IOException {
    Tagged there = getTagged(key);
    if (there != null && there.data().equals(data.duplicate())) {
      return there.tag();
    }
    boolean unchanged = there == null ? expectedTag == null : there.tag().equals(expectedTag);
    if (unchanged) {
      throw unavailable("put " + key, failure);
    }
    return null;
  }

  @Override
  public @Nullable ByteBuffer get(String key) throws IOException {
    Tagged tagged = getTagged(key);
    return tagged == null ? null : tagged.data();
  }

  @Override
  public @Nullable Tagged getTagged(String key) throws IOException {
    ResponseBytes<GetObjectResponse> bytes;
    try {
      bytes = s3.getObjectAsBytes(b -> b.bucket(bucket).key(prefix + key));
    } catch (NoSuchKeyException e) {
      return null;
    } catch (SdkException e) {
      throw unavailable("get " + key, e);
    }
    ByteBuffer data = bytes.asByteBuffer();
    String stored = bytes.response().metadata().get(CRC_METADATA);
    if (stored == null) {
      throw new CorruptObjectException("object " + key + " has no CRC-32C");
    }
    String actual = Crc32c.of(data);
    if (!stored.equalsIgnoreCase(actual)) {
      throw new CorruptObjectException(
          "object " + key + ": CRC-32C " + actual + ", stored with " + stored);
    }
    return new Tagged(data, unquoted(bytes.response().eTag()));
  }

  /** An entity tag without the quotes S3 puts around it. */
  private static String unquoted(String etag) {
    return etag.length() >= 2 && etag.startsWith("\"") && etag.endsWith("\"")
        ? etag.substring(1, etag.length() - 1)
        : etag;
  }

  @Override
  public List<String> list(String keyPrefix) throws IOException {
    List<String> keys = new ArrayList<>();
    try {
      for (S3Object o :
          s3.listObjectsV2Paginator(b -> b.bucket(bucket).prefix(prefix + keyPrefix)).contents()) {
        keys.add(o.key().substring(prefix.length()));
      }
    } catch (SdkException e) {
      throw unavailable("list " + keyPrefix, e);
    }
    return keys;
  }

  @Override
  public void delete(String key) throws IOException {
    call(() -> s3.deleteObject(b -> b.bucket(bucket).key(prefix + key)));
  }

  /**
   * Whether the bucket answers within {@code deadline}, tried once: for health checks, which must
   * not wait out the retries of ordinary requests while the store is down.
   */
  public boolean answers(Duration deadline) {
    try {
      s3.headBucket(
          b ->
              b.bucket(bucket)
                  .overrideConfiguration(
                      o -> o.apiCallTimeout(deadline).apiCallAttemptTimeout(deadline)));
      return true;
    } catch (SdkException e) {
      return false;
    }
  }

  /** The SDK client, for tests that damage objects behind the store's back. */
  S3Client rawClientForTest() {
    return s3;
  }

  /** The bucket key of {@code key}. */
  String keyForTest(String key) {
    return prefix + key;
  }

  @Override
  public void close() {
    s3.close();
  }

  /**
   * The request body straight from {@code data}: the SDK's {@code fromByteBuffer} copies it first,
   * which doubles the memory of every upload in flight. Each attempt reads the bytes anew.
   */
  private static RequestBody body(ByteBuffer data) {
    ByteBuffer bytes = data.asReadOnlyBuffer();
    return RequestBody.fromContentProvider(
        () -> new ByteBufferInputStream(bytes.duplicate()),
        bytes.remaining(),
        "application/octet-stream");
  }

  /** Reads a buffer's remaining bytes as a stream. */
  private static final class ByteBufferInputStream extends java.io.InputStream {
    private final ByteBuffer bytes;

    ByteBufferInputStream(ByteBuffer bytes) {
      this.bytes = bytes;
    }

    @Override
    public int read() {
      return bytes.hasRemaining() ? bytes.get() & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int len) {
      if (len == 0) {
        return 0;
      }
      if (!bytes.hasRemaining()) {
        return -1;
      }
      int n = Math.min(len, bytes.remaining());
      bytes.get(b, off, n);
      return n;
    }

    @Override
    public int available() {
      return bytes.remaining();
    }
  }

  private interface Call {
    void run();
  }

  private static void call(Call call) throws IOException {
    try {
      call.run();
    } catch (SdkException e) {
      throw unavailable("request", e);
    }
  }

  private static IOException unavailable(String what, SdkException e) {
    return new StoreUnavailableException("object store: " + what + " failed: " + e.getMessage(), e);
  }
}
