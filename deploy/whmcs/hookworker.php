<?php
/**
 * hookworker: publish WHMCS events to NATS JetStream.
 *
 * Drop this file into <whmcs>/includes/hooks/ and put its configuration in
 * <whmcs>/includes/hooks/hookworker/config.php (copy
 * hookworker_config.php.example). See README.md.
 *
 * Every hook here is bounded in time and never throws: when NATS is slow or
 * down the event is written to a local spool and sent later (AfterCronJob,
 * or the next request that publishes successfully). Nothing here ever
 * publishes a password, the server password or the server access hash.
 *
 * PHP 7.4 - 8.3, no Composer, no extensions beyond core + json (+ openssl for
 * tls://).
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

if (!class_exists('HookworkerError', false)) {

    /**
     * A publish failure. Permanent failures (the event can never be sent,
     * e.g. larger than the server's max_payload) are moved aside instead of
     * being retried forever.
     */
    class HookworkerError extends RuntimeException
    {
        /** @var bool */
        public $permanent = false;

        public function __construct(string $message, bool $permanent = false)
        {
            parent::__construct($message);
            $this->permanent = $permanent;
        }
    }

    /**
     * A minimal NATS client: INFO, CONNECT, PING/PONG, SUB, HPUB and the
     * JetStream PubAck. Every blocking call takes an absolute deadline
     * (microtime(true) seconds) and fails with HookworkerError once it passes.
     */
    final class HookworkerNats
    {
        /** @var resource|null */
        private $sock = null;
        /** @var string */
        private $buf = '';
        /** @var array */
        private $info = array();
        /** @var string */
        private $inbox = '';
        /** @var int */
        private $seq = 0;
        /** @var array */
        private $cfg;

        public function __construct(array $cfg)
        {
            $this->cfg = $cfg;
        }

        /** The server's INFO (after connect). */
        public function info(): array
        {
            return $this->info;
        }

        /**
         * Connects to the first reachable server of $cfg['servers'].
         */
        public static function connectAny(array $cfg, float $deadline): HookworkerNats
        {
            $errors = array();
            foreach ($cfg['servers'] as $url) {
                if (microtime(true) >= $deadline) {
                    $errors[] = 'timeout';
                    break;
                }
                $c = new HookworkerNats($cfg);
                try {
                    $c->connect($url, $deadline);
                    return $c;
                } catch (HookworkerError $e) {
                    $c->close();
                    $errors[] = $e->getMessage();
                }
            }
            throw new HookworkerError(implode('; ', $errors));
        }

        /** $url without user info (credentials), for messages. */
        public static function redact(string $url): string
        {
            return (string) preg_replace('#^([a-z]+://)[^@/]*@#i', '$1', trim($url));
        }

        /** Splits nats://[user[:pass]@]host[:port] and tls://... */
        public static function parseUrl(string $url): array
        {
            $url = trim($url);
            if (strpos($url, '://') === false) {
                $url = 'nats://' . $url;
            }
            $p = parse_url($url);
            if (!is_array($p) || empty($p['host'])) {
                throw new HookworkerError('invalid NATS URL', true);
            }
            $scheme = strtolower(isset($p['scheme']) ? $p['scheme'] : 'nats');
            if ($scheme !== 'nats' && $scheme !== 'tls') {
                throw new HookworkerError('unsupported NATS URL scheme ' . $scheme . ' (use nats:// or tls://)', true);
            }
            return array(
                'scheme' => $scheme,
                'host' => trim($p['host'], '[]'),
                'port' => isset($p['port']) ? (int) $p['port'] : 4222,
                'user' => isset($p['user']) ? rawurldecode($p['user']) : '',
                'pass' => isset($p['pass']) ? rawurldecode($p['pass']) : '',
            );
        }

        private function sslOptions(string $host): array
        {
            $verify = !isset($this->cfg['tls_verify_peer']) || (bool) $this->cfg['tls_verify_peer'];
            $o = array(
                'verify_peer' => $verify,
                'verify_peer_name' => $verify,
                'allow_self_signed' => false,
                'SNI_enabled' => true,
                'peer_name' => !empty($this->cfg['tls_peer_name']) ? (string) $this->cfg['tls_peer_name'] : $host,
            );
            if (!empty($this->cfg['tls_ca_file'])) {
                $o['cafile'] = (string) $this->cfg['tls_ca_file'];
            }
            if (!empty($this->cfg['tls_cert_file'])) {
                $o['local_cert'] = (string) $this->cfg['tls_cert_file'];
                if (!empty($this->cfg['tls_key_file'])) {
                    $o['local_pk'] = (string) $this->cfg['tls_key_file'];
                }
            }
            return $o;
        }

        public function connect(string $url, float $deadline): void
        {
            $u = self::parseUrl($url);
            $wantTls = $u['scheme'] === 'tls';
            $handshakeFirst = $wantTls && !empty($this->cfg['tls_handshake_first']);
            $ctx = stream_context_create(array('ssl' => $this->sslOptions($u['host'])));
            $remaining = $deadline - microtime(true);
            if ($remaining <= 0) {
                throw new HookworkerError('timeout before connect');
            }
            $host = strpos($u['host'], ':') !== false ? '[' . $u['host'] . ']' : $u['host'];
            $target = ($handshakeFirst ? 'tls://' : 'tcp://') . $host . ':' . $u['port'];
            $errno = 0;
            $errstr = '';
            $s = @stream_socket_client($target, $errno, $errstr, $remaining, STREAM_CLIENT_CONNECT, $ctx);
            if (!is_resource($s)) {
                throw new HookworkerError('connect ' . $u['host'] . ':' . $u['port'] . ': ' . ($errstr !== '' ? $errstr : 'failed') . ' (' . $errno . ')');
            }
            $this->sock = $s;
            $where = $u['host'] . ':' . $u['port'];

            $line = $this->nextLine($deadline);
            if (strncmp($line, 'INFO ', 5) !== 0) {
                throw new HookworkerError($where . ': expected INFO, got ' . substr($line, 0, 80));
            }
            $info = json_decode(substr($line, 5), true);
            $this->info = is_array($info) ? $info : array();

            $serverTls = !empty($this->info['tls_required']);
            if ($wantTls && !$handshakeFirst) {
                if (!$serverTls && empty($this->info['tls_available'])) {
                    throw new HookworkerError($where . ': tls:// configured but the server offers no TLS', true);
                }
                $this->startTls($deadline, $where);
            } elseif (!$wantTls && $serverTls) {
                // The server insists on TLS: upgrade, still verifying the peer.
                $this->startTls($deadline, $where);
                $wantTls = true;
            }
            if (isset($this->info['headers']) && !$this->info['headers']) {
                throw new HookworkerError($where . ': server does not support headers (HPUB)');
            }

            $connect = array(
                'verbose' => false,
                'pedantic' => false,
                'tls_required' => $wantTls,
                'headers' => true,
                'no_responders' => true,
                'lang' => 'php',
                'version' => Hookworker::VERSION,
                'protocol' => 1,
                'name' => 'hookworker-whmcs-' . (isset($this->cfg['instance']) ? $this->cfg['instance'] : ''),
            );
            $token = isset($this->cfg['token']) ? (string) $this->cfg['token'] : '';
            $user = isset($this->cfg['user']) ? (string) $this->cfg['user'] : '';
            $pass = isset($this->cfg['password']) ? (string) $this->cfg['password'] : '';
            if ($u['user'] !== '' && $u['pass'] === '' && $token === '') {
                $token = $u['user'];
            } elseif ($u['user'] !== '' && $user === '') {
                $user = $u['user'];
                $pass = $u['pass'];
            }
            if ($token !== '') {
                $connect['auth_token'] = $token;
            } elseif ($user !== '') {
                $connect['user'] = $user;
                $connect['pass'] = $pass;
            }
            $json = json_encode($connect, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
            $this->inbox = '_INBOX.' . bin2hex(random_bytes(11));
            $this->write('CONNECT ' . $json . "\r\nPING\r\nSUB " . $this->inbox . ".* 1\r\n", $deadline);

            while (true) {
                $line = $this->nextLine($deadline);
                if ($line === 'PONG') {
                    return;
                }
                if ($this->control($line, $deadline)) {
                    continue;
                }
                throw new HookworkerError($where . ': unexpected reply to CONNECT: ' . substr($line, 0, 80));
            }
        }

        /**
         * Upgrades the connection to TLS. The handshake runs non-blocking so
         * that a server that stalls mid-handshake cannot hold the request
         * past the deadline (a blocking handshake would wait for the
         * socket's connect timeout instead).
         */
        private function startTls(float $deadline, string $where): void
        {
            if ($this->buf !== '') {
                throw new HookworkerError($where . ': unexpected data before the TLS handshake');
            }
            $method = STREAM_CRYPTO_METHOD_TLSv1_2_CLIENT;
            if (defined('STREAM_CRYPTO_METHOD_TLSv1_3_CLIENT')) {
                $method |= STREAM_CRYPTO_METHOD_TLSv1_3_CLIENT;
            }
            stream_set_blocking($this->sock, false);
            try {
                while (true) {
                    error_clear_last();
                    $ok = @stream_socket_enable_crypto($this->sock, true, $method);
                    if ($ok === true) {
                        return;
                    }
                    if ($ok === false) {
                        $err = error_get_last();
                        throw new HookworkerError($where . ': TLS handshake failed' . ($err ? ': ' . $err['message'] : ''));
                    }
                    $rem = $deadline - microtime(true);
                    if ($rem <= 0) {
                        throw new HookworkerError($where . ': timeout during the TLS handshake');
                    }
                    // Wait for the server (briefly, in case OpenSSL wants to write).
                    $wait = min($rem, 0.05);
                    $r = array($this->sock);
                    $w = null;
                    $e = null;
                    @stream_select($r, $w, $e, 0, (int) ($wait * 1000000));
                }
            } finally {
                if (is_resource($this->sock)) {
                    stream_set_blocking($this->sock, true);
                }
            }
        }

        /**
         * Handles lines that may arrive at any time. Returns true when the
         * line was consumed; throws on -ERR.
         */
        private function control(string $line, float $deadline): bool
        {
            if ($line === 'PING') {
                $this->write("PONG\r\n", $deadline);
                return true;
            }
            if ($line === 'PONG' || $line === '+OK' || strncmp($line, 'INFO ', 5) === 0) {
                return true;
            }
            if (strncmp($line, '-ERR', 4) === 0) {
                throw new HookworkerError('server error: ' . trim(substr($line, 4), " '"));
            }
            return false;
        }

        /**
         * Publishes one message with Nats-Msg-Id and waits for the
         * JetStream PubAck. Returns the decoded ack (stream, seq, duplicate).
         */
        public function publish(string $subject, string $msgId, string $payload, float $deadline): array
        {
            if ($this->sock === null) {
                throw new HookworkerError('not connected');
            }
            if (preg_match('/[\s]/', $subject) || preg_match('/[\r\n]/', $msgId) || $msgId === '') {
                throw new HookworkerError('invalid subject or message id', true);
            }
            $this->seq++;
            $reply = $this->inbox . '.' . $this->seq;
            $hdr = "NATS/1.0\r\nNats-Msg-Id: " . $msgId . "\r\n";
            if (!empty($this->cfg['expected_stream'])) {
                $hdr .= 'Nats-Expected-Stream: ' . $this->cfg['expected_stream'] . "\r\n";
            }
            $hdr .= "\r\n";
            $total = strlen($hdr) + strlen($payload);
            if (isset($this->info['max_payload']) && $total > (int) $this->info['max_payload']) {
                throw new HookworkerError('event ' . $msgId . ' is ' . $total . ' bytes, over the server max_payload ' . $this->info['max_payload'], true);
            }
            $this->write('HPUB ' . $subject . ' ' . $reply . ' ' . strlen($hdr) . ' ' . $total . "\r\n" . $hdr . $payload . "\r\n", $deadline);
            return $this->awaitReply($reply, $subject, $deadline);
        }

        /**
         * Sends a plain request (used by the bench script to create the
         * stream through the JetStream API) and returns the decoded reply.
         */
        public function request(string $subject, string $payload, float $deadline): array
        {
            $this->seq++;
            $reply = $this->inbox . '.' . $this->seq;
            $this->write('PUB ' . $subject . ' ' . $reply . ' ' . strlen($payload) . "\r\n" . $payload . "\r\n", $deadline);
            return $this->awaitReply($reply, $subject, $deadline, false);
        }

        /**
         * Core NATS request-reply, for the worker's hookworker.rpc.*
         * subjects: SUB to a fresh inbox, PUB with that inbox as reply-to,
         * wait for the MSG until $deadline, UNSUB. Returns the decoded
         * reply; throws HookworkerError on no responders (nobody listens on
         * $subject: no worker runs), on timeout and on a reply that is not
         * JSON.
         */
        public function requestReply(string $subject, string $payload, float $deadline): array
        {
            if ($this->sock === null) {
                throw new HookworkerError('not connected');
            }
            if (preg_match('/\s/', $subject)) {
                throw new HookworkerError('invalid subject', true);
            }
            $this->seq++;
            $sid = 'r' . $this->seq;
            $inbox = '_INBOX.' . bin2hex(random_bytes(11));
            $this->write('SUB ' . $inbox . ' ' . $sid . "\r\nPUB " . $subject . ' ' . $inbox . ' ' . strlen($payload) . "\r\n" . $payload . "\r\n", $deadline);
            try {
                return $this->awaitReply($inbox, $subject, $deadline, false);
            } finally {
                if (is_resource($this->sock)) {
                    try {
                        $this->write('UNSUB ' . $sid . "\r\n", microtime(true) + 0.2);
                    } catch (HookworkerError $e) {
                        // the connection is closed right after anyway
                    }
                }
            }
        }

        private function awaitReply(string $reply, string $subject, float $deadline, bool $isAck = true): array
        {
            while (true) {
                $line = $this->nextLine($deadline);
                if ($this->control($line, $deadline)) {
                    continue;
                }
                $parts = explode(' ', $line);
                if ($parts[0] === 'MSG' && count($parts) >= 4) {
                    $n = (int) $parts[count($parts) - 1];
                    $data = $this->readExact($n + 2, $deadline);
                    if ($parts[1] !== $reply) {
                        continue; // a late reply to an earlier request
                    }
                    $body = substr($data, 0, $n);
                } elseif ($parts[0] === 'HMSG' && count($parts) >= 5) {
                    $total = (int) $parts[count($parts) - 1];
                    $hlen = (int) $parts[count($parts) - 2];
                    $data = $this->readExact($total + 2, $deadline);
                    if ($parts[1] !== $reply) {
                        continue;
                    }
                    $hdrs = substr($data, 0, $hlen);
                    if (preg_match('#^NATS/1\.0[ \t]+(\d{3})([^\r\n]*)#', $hdrs, $m)) {
                        if ($m[1] === '503') {
                            throw new HookworkerError('no responders for ' . $subject . ($isAck ? ' (no JetStream stream captures it)' : ''));
                        }
                        throw new HookworkerError('status ' . $m[1] . trim($m[2]) . ' for ' . $subject);
                    }
                    $body = (string) substr($data, $hlen, $total - $hlen);
                } else {
                    throw new HookworkerError('unexpected protocol line: ' . substr($line, 0, 80));
                }
                $ack = json_decode($body, true);
                if (!is_array($ack)) {
                    throw new HookworkerError('undecodable reply for ' . $subject);
                }
                if (!$isAck) {
                    return $ack;
                }
                if (isset($ack['error'])) {
                    $e = is_array($ack['error']) ? $ack['error'] : array();
                    $errCode = isset($e['err_code']) ? (int) $e['err_code'] : 0;
                    // 10054: message larger than the stream allows; retrying
                    // cannot help, every other error may clear up.
                    throw new HookworkerError('JetStream error ' . (isset($e['code']) ? $e['code'] : '?') . '/' .
                        ($errCode ?: '?') . ': ' . (isset($e['description']) ? $e['description'] : ''), $errCode === 10054);
                }
                if (empty($ack['stream']) || !isset($ack['seq'])) {
                    throw new HookworkerError('reply for ' . $subject . ' is not a JetStream PubAck');
                }
                return $ack;
            }
        }

        private function setTimeout(float $deadline): void
        {
            $rem = $deadline - microtime(true);
            if ($rem <= 0) {
                throw new HookworkerError('timeout');
            }
            $sec = (int) floor($rem);
            $usec = (int) (($rem - $sec) * 1000000);
            if ($sec === 0 && $usec < 1000) {
                $usec = 1000;
            }
            stream_set_timeout($this->sock, $sec, $usec);
        }

        private function fill(float $deadline): void
        {
            $this->setTimeout($deadline);
            $chunk = @fread($this->sock, 65536);
            if ($chunk === false || $chunk === '') {
                $meta = stream_get_meta_data($this->sock);
                if (!empty($meta['timed_out'])) {
                    throw new HookworkerError('timeout waiting for the server');
                }
                if (feof($this->sock)) {
                    throw new HookworkerError('connection closed by the server');
                }
                return;
            }
            $this->buf .= $chunk;
        }

        /** Returns the next CRLF-terminated protocol line (without CRLF). */
        private function nextLine(float $deadline): string
        {
            while (true) {
                $pos = strpos($this->buf, "\r\n");
                if ($pos !== false) {
                    $line = substr($this->buf, 0, $pos);
                    $this->buf = (string) substr($this->buf, $pos + 2);
                    return $line;
                }
                if (strlen($this->buf) > 65536) {
                    throw new HookworkerError('protocol line too long');
                }
                $this->fill($deadline);
            }
        }

        private function readExact(int $n, float $deadline): string
        {
            while (strlen($this->buf) < $n) {
                $this->fill($deadline);
            }
            $data = substr($this->buf, 0, $n);
            $this->buf = (string) substr($this->buf, $n);
            return $data;
        }

        private function write(string $data, float $deadline): void
        {
            while ($data !== '') {
                $this->setTimeout($deadline);
                $n = @fwrite($this->sock, $data);
                if ($n === false || $n === 0) {
                    $meta = stream_get_meta_data($this->sock);
                    throw new HookworkerError(!empty($meta['timed_out']) ? 'timeout writing to the server' : 'write to the server failed');
                }
                $data = (string) substr($data, $n);
            }
        }

        public function close(): void
        {
            if (is_resource($this->sock)) {
                @fclose($this->sock);
            }
            $this->sock = null;
        }
    }

    /**
     * The local spool: one JSON file per event (the exact envelope that
     * would have been published), named <microtime>-<random>-<type>.json so
     * that a name sort is oldest first.
     *
     * Writers never lock: each writes a unique hidden temp file and renames
     * it into place, which is atomic, so a reader only ever sees complete
     * files and a writer can never stall behind a flush. Flushers take an
     * exclusive flock on <spool>/.lock, so only one process sends (and
     * deletes / moves aside) entries at a time.
     */
    final class HookworkerSpool
    {
        const STALE_TMP_SECONDS = 600;

        /** @var string */
        private $dir;

        public function __construct(string $dir)
        {
            $this->dir = rtrim($dir, '/');
        }

        public function dir(): string
        {
            return $this->dir;
        }

        private function ensureDir(string $dir): void
        {
            if (!is_dir($dir) && !@mkdir($dir, 0700, true) && !is_dir($dir)) {
                throw new RuntimeException('cannot create spool directory ' . $dir);
            }
        }

        /** Writes one entry atomically; returns its file name. */
        public function put(string $type, string $json): string
        {
            $this->ensureDir($this->dir);
            $t = explode(' ', microtime());
            $name = sprintf('%010d%06d', (int) $t[1], min(999999, (int) round((float) $t[0] * 1000000))) .
                '-' . bin2hex(random_bytes(6)) . '-' . preg_replace('/[^a-z_.]/', '', $type) . '.json';
            $tmp = $this->dir . '/.tmp-' . $name;
            $fh = @fopen($tmp, 'xb');
            if ($fh === false) {
                throw new RuntimeException('cannot create ' . $tmp);
            }
            @chmod($tmp, 0600);
            $ok = true;
            $data = $json;
            while ($data !== '' && $ok) {
                $n = @fwrite($fh, $data);
                if ($n === false || $n === 0) {
                    $ok = false;
                } else {
                    $data = (string) substr($data, $n);
                }
            }
            $ok = $ok && @fflush($fh);
            if ($ok && function_exists('fsync')) {
                @fsync($fh);
            }
            @fclose($fh);
            if (!$ok || !@rename($tmp, $this->dir . '/' . $name)) {
                @unlink($tmp);
                throw new RuntimeException('cannot write spool entry in ' . $this->dir);
            }
            return $name;
        }

        /** Entry names, oldest first. */
        public function entries(): array
        {
            $names = @scandir($this->dir);
            if (!is_array($names)) {
                return array();
            }
            $out = array();
            foreach ($names as $n) {
                if ($n[0] !== '.' && substr($n, -5) === '.json' && is_file($this->dir . '/' . $n)) {
                    $out[] = $n;
                }
            }
            sort($out, SORT_STRING);
            return $out;
        }

        public function count(): int
        {
            return count($this->entries());
        }

        /**
         * Validates a spooled envelope. Returns [subject, id] or null with
         * $why set.
         */
        public static function check(string $raw, &$why): ?array
        {
            $e = json_decode($raw, true);
            if (!is_array($e)) {
                $why = 'not a JSON object' . (json_last_error() ? ' (' . json_last_error_msg() . ')' : '');
                return null;
            }
            foreach (array('id', 'type', 'spec_version', 'occurred_at', 'source') as $k) {
                if (!isset($e[$k]) || !is_string($e[$k]) || trim($e[$k]) === '') {
                    $why = 'field ' . $k . ' missing or not a string';
                    return null;
                }
            }
            if (strlen($e['id']) > 512 || preg_match('/[\r\n]/', $e['id'])) {
                $why = 'invalid id';
                return null;
            }
            if (!in_array($e['type'], Hookworker::inboundTypes(), true)) {
                $why = 'unknown type ' . substr($e['type'], 0, 40);
                return null;
            }
            if (!preg_match('/^[A-Za-z0-9_-]+$/', $e['source'])) {
                $why = 'invalid source';
                return null;
            }
            if (!isset($e['data']) || !is_array($e['data']) || count($e['data']) === 0) {
                $why = 'data missing';
                return null;
            }
            return array('whmcs.' . $e['source'] . '.' . $e['type'], $e['id']);
        }

        /**
         * Moves an entry (or a stale temp file) to corrupt/ with a .reason
         * file next to it. Returns the new path.
         */
        public function moveAside(string $name, string $why): string
        {
            $cdir = $this->dir . '/corrupt';
            $this->ensureDir($cdir);
            $dest = $cdir . '/' . ltrim($name, '.');
            if (file_exists($dest)) {
                $dest .= '.' . bin2hex(random_bytes(3));
            }
            if (!@rename($this->dir . '/' . $name, $dest)) {
                throw new RuntimeException('cannot move ' . $name . ' to ' . $cdir);
            }
            @file_put_contents($dest . '.reason', gmdate('c') . ' ' . $why . "\n");
            return $dest;
        }

        /**
         * Sends entries oldest first through $send(subject, id, raw), at most
         * $max of them and not past $deadline. $send throws HookworkerError
         * on failure: a transient one stops the flush (the entry stays), a
         * permanent one moves the entry aside. $report(message) is called for
         * every entry moved aside. Returns ['sent'=>n, 'corrupt'=>n,
         * 'left'=>n, 'error'=>string|null, 'locked'=>bool].
         */
        public function flush(callable $send, callable $report, int $max, float $deadline, float $lockWait = 0.0): array
        {
            $res = array('sent' => 0, 'corrupt' => 0, 'left' => 0, 'error' => null, 'locked' => false);
            if (!is_dir($this->dir)) {
                return $res;
            }
            $lock = @fopen($this->dir . '/.lock', 'c');
            if ($lock === false) {
                $res['error'] = 'cannot open ' . $this->dir . '/.lock';
                return $res;
            }
            $got = false;
            $until = microtime(true) + $lockWait;
            while (true) {
                $wb = 0;
                if (@flock($lock, LOCK_EX | LOCK_NB, $wb)) {
                    $got = true;
                    break;
                }
                if (microtime(true) >= $until || microtime(true) >= $deadline) {
                    break;
                }
                usleep(20000);
            }
            if (!$got) {
                @fclose($lock);
                $res['locked'] = true; // another process is flushing
                return $res;
            }
            try {
                $this->sweepStaleTemp($report, $res);
                foreach ($this->entries() as $name) {
                    if ($res['sent'] >= $max || microtime(true) >= $deadline) {
                        break;
                    }
                    $path = $this->dir . '/' . $name;
                    $raw = @file_get_contents($path);
                    if ($raw === false) {
                        if (file_exists($path)) {
                            $this->aside($name, 'unreadable', $report, $res);
                        }
                        continue;
                    }
                    $why = '';
                    $chk = self::check($raw, $why);
                    if ($chk === null) {
                        $this->aside($name, $why, $report, $res);
                        continue;
                    }
                    try {
                        $send($chk[0], $chk[1], $raw);
                    } catch (HookworkerError $e) {
                        if ($e->permanent) {
                            $this->aside($name, 'rejected: ' . $e->getMessage(), $report, $res);
                            continue;
                        }
                        $res['error'] = $e->getMessage();
                        break;
                    }
                    @unlink($path);
                    $res['sent']++;
                }
                $res['left'] = $this->count();
            } finally {
                @flock($lock, LOCK_UN);
                @fclose($lock);
            }
            return $res;
        }

        private function aside(string $name, string $why, callable $report, array &$res): void
        {
            try {
                $dest = $this->moveAside($name, $why);
                $res['corrupt']++;
                $report('corrupt spool entry ' . $name . ' moved to ' . $dest . ': ' . $why);
            } catch (Throwable $e) {
                $report('corrupt spool entry ' . $name . ' (' . $why . ') could not be moved aside: ' . $e->getMessage());
            }
        }

        /** Temp files left by a writer that died mid-write. */
        private function sweepStaleTemp(callable $report, array &$res): void
        {
            $names = @scandir($this->dir);
            if (!is_array($names)) {
                return;
            }
            foreach ($names as $n) {
                if (strncmp($n, '.tmp-', 5) !== 0) {
                    continue;
                }
                $mt = @filemtime($this->dir . '/' . $n);
                if ($mt !== false && time() - $mt > self::STALE_TMP_SECONDS) {
                    $this->aside($n, 'incomplete write (temp file older than ' . self::STALE_TMP_SECONDS . ' s)', $report, $res);
                }
            }
        }
    }

    /**
     * The hooks: build events from WHMCS data and publish or spool them.
     */
    final class Hookworker
    {
        const VERSION = '1.0.0';
        /** The server module's name (modules/servers/hookworker). */
        const MODULE = 'hookworker';
        const SPEC_VERSION = '1.0';

        /** @var array|null */
        private static $cfg = null;
        /** @var bool */
        private static $cfgLoaded = false;
        /** @var string|null */
        private static $requestId = null;
        /** @var array<string,bool> event ids already published or spooled in this request */
        private static $done = array();
        /** @var bool NATS failed earlier in this request: spool straight away */
        private static $downThisRequest = false;
        /** @var array localAPI results cached for this request */
        private static $cache = array();
        /** @var array|null last publish statistics (tests, bench) */
        public static $last = null;

        const HOOKS = array(
            'ClientAdd' => 'client.added',
            'AcceptOrder' => 'order.accepted',
            'InvoicePaid' => 'invoice.paid',
            'AfterModuleSuspend' => 'service.suspended',
            'AfterModuleUnsuspend' => 'service.unsuspended',
            'AfterModuleTerminate' => 'service.terminated',
            'AfterModuleChangePassword' => 'service.password_changed',
            'AfterModuleChangePackage' => 'service.package_changed',
        );

        public static function inboundTypes(): array
        {
            return array('client.added', 'order.accepted', 'invoice.paid', 'service.renewal_paid',
                'service.suspended', 'service.unsuspended', 'service.terminated',
                'service.password_changed', 'service.package_changed');
        }

        /** Registers every hook with WHMCS. */
        public static function register(): void
        {
            if (!function_exists('add_hook')) {
                return;
            }
            foreach (array_keys(self::HOOKS) as $hook) {
                add_hook($hook, 1, function ($vars) use ($hook) {
                    Hookworker::handle($hook, $vars);
                });
            }
            add_hook('AfterCronJob', 1, function ($vars) {
                Hookworker::cronFlush();
            });
        }

        /** Forget per-request state (tests and the bench simulate new requests). */
        public static function resetRequest(): void
        {
            self::$requestId = null;
            self::$done = array();
            self::$downThisRequest = false;
            self::$cache = array();
            self::$last = null;
        }

        /** Drop the cached configuration (tests). */
        public static function resetConfig(): void
        {
            self::$cfg = null;
            self::$cfgLoaded = false;
        }

        /** Generated once per PHP request. */
        public static function requestId(): string
        {
            if (self::$requestId === null) {
                self::$requestId = bin2hex(random_bytes(8));
            }
            return self::$requestId;
        }

        // ---------------------------------------------------------------
        // configuration

        public static function config(): ?array
        {
            if (self::$cfgLoaded) {
                return self::$cfg;
            }
            self::$cfgLoaded = true;
            $candidates = array();
            if (defined('HOOKWORKER_CONFIG')) {
                $candidates[] = (string) constant('HOOKWORKER_CONFIG');
            }
            $env = getenv('HOOKWORKER_CONFIG');
            if (is_string($env) && $env !== '') {
                $candidates[] = $env;
            }
            $candidates[] = __DIR__ . '/hookworker/config.php';
            $candidates[] = __DIR__ . '/_hookworker_config.php';
            $raw = null;
            foreach ($candidates as $f) {
                if (is_file($f)) {
                    $raw = include $f;
                    break;
                }
            }
            if (!is_array($raw)) {
                self::log('no configuration found (expected ' . __DIR__ . '/hookworker/config.php returning an array); nothing is published');
                return null;
            }
            $err = '';
            $cfg = self::normalizeConfig($raw, $err);
            if ($cfg === null) {
                self::log('invalid configuration: ' . $err . '; nothing is published');
                return null;
            }
            self::$cfg = $cfg;
            return $cfg;
        }

        public static function normalizeConfig(array $c, &$err): ?array
        {
            $servers = isset($c['servers']) ? $c['servers'] : (isset($c['url']) ? $c['url'] : 'nats://127.0.0.1:4222');
            if (is_string($servers)) {
                $servers = preg_split('/\s*,\s*/', trim($servers), -1, PREG_SPLIT_NO_EMPTY);
            }
            if (!is_array($servers) || count($servers) === 0) {
                $err = 'servers must list at least one nats:// or tls:// URL';
                return null;
            }
            foreach ($servers as $s) {
                try {
                    HookworkerNats::parseUrl((string) $s);
                } catch (HookworkerError $e) {
                    $err = $e->getMessage();
                    return null;
                }
            }
            $instance = isset($c['instance']) ? (string) $c['instance'] : '';
            if (!preg_match('/^[A-Za-z0-9_-]{1,64}$/', $instance)) {
                $err = 'instance must be 1-64 letters, digits, "-" or "_" (it becomes a NATS subject token)';
                return null;
            }
            $timeout = isset($c['timeout']) ? (float) $c['timeout'] : 1.0;
            if ($timeout <= 0) {
                $timeout = 1.0;
            }
            $timeout = max(0.05, min($timeout, 10.0));
            $spool = isset($c['spool_dir']) && (string) $c['spool_dir'] !== '' ? (string) $c['spool_dir']
                : rtrim(sys_get_temp_dir(), '/') . '/hookworker-spool-' . $instance;
            return array(
                'instance' => $instance,
                'servers' => array_values(array_map('strval', $servers)),
                'token' => isset($c['token']) ? (string) $c['token'] : '',
                'user' => isset($c['user']) ? (string) $c['user'] : '',
                'password' => isset($c['password']) ? (string) $c['password'] : '',
                'tls_ca_file' => isset($c['tls_ca_file']) ? (string) $c['tls_ca_file'] : '',
                'tls_verify_peer' => !isset($c['tls_verify_peer']) || (bool) $c['tls_verify_peer'],
                'tls_peer_name' => isset($c['tls_peer_name']) ? (string) $c['tls_peer_name'] : '',
                'tls_cert_file' => isset($c['tls_cert_file']) ? (string) $c['tls_cert_file'] : '',
                'tls_key_file' => isset($c['tls_key_file']) ? (string) $c['tls_key_file'] : '',
                'tls_handshake_first' => !empty($c['tls_handshake_first']),
                'expected_stream' => isset($c['expected_stream']) ? (string) $c['expected_stream'] : '',
                'timeout' => $timeout,
                'spool_dir' => $spool,
                'flush_per_request' => isset($c['flush_per_request']) ? max(0, (int) $c['flush_per_request']) : 20,
                'flush_per_cron' => isset($c['flush_per_cron']) ? max(1, (int) $c['flush_per_cron']) : 10000,
                'cron_seconds' => isset($c['cron_seconds']) ? max(1.0, (float) $c['cron_seconds']) : 60.0,
                'down_backoff' => isset($c['down_backoff']) ? max(0.0, (float) $c['down_backoff']) : 5.0,
                'client_custom_fields' => isset($c['client_custom_fields']) && is_array($c['client_custom_fields'])
                    ? array_map('strval', $c['client_custom_fields']) : array(),
                'addon_renewals' => !isset($c['addon_renewals']) || (bool) $c['addon_renewals'],
                'api_admin' => isset($c['api_admin']) ? (string) $c['api_admin'] : '',
                'log_published' => !empty($c['log_published']),
            );
        }

        // ---------------------------------------------------------------
        // logging

        public static function log(string $msg): void
        {
            $msg = 'hookworker: ' . $msg;
            try {
                if (function_exists('logActivity')) {
                    logActivity($msg);
                    return;
                }
            } catch (Throwable $e) {
                // fall through to error_log
            }
            error_log($msg);
        }

        // ---------------------------------------------------------------
        // entry points

        /** Runs one hook. Never throws. */
        public static function handle(string $hook, $vars): void
        {
            try {
                $cfg = self::config();
                if ($cfg === null) {
                    return;
                }
                $vars = is_array($vars) ? $vars : array();
                $events = self::build($hook, $vars, $cfg);
                if (count($events) > 0) {
                    self::publish($events, $cfg);
                }
            } catch (Throwable $e) {
                self::log($hook . ' failed: ' . get_class($e) . ': ' . $e->getMessage());
            }
        }

        /** AfterCronJob: drain the spool. Never throws. */
        public static function cronFlush(): ?array
        {
            try {
                $cfg = self::config();
                if ($cfg === null) {
                    return null;
                }
                $spool = new HookworkerSpool($cfg['spool_dir']);
                $end = microtime(true) + $cfg['cron_seconds'];
                $nats = null;
                $send = function ($subject, $id, $raw) use (&$nats, $cfg, $end) {
                    $dl = min($end, microtime(true) + $cfg['timeout']);
                    if ($nats === null) {
                        $nats = HookworkerNats::connectAny($cfg, $dl);
                    }
                    $nats->publish($subject, $id, $raw, $dl);
                };
                $res = $spool->flush($send, function ($m) {
                    Hookworker::log($m);
                }, $cfg['flush_per_cron'], $end, 5.0);
                if ($nats !== null) {
                    $nats->close();
                }
                if ($res['error'] === null && $res['sent'] > 0) {
                    self::clearDown($cfg);
                }
                if ($res['sent'] > 0 || $res['error'] !== null) {
                    self::log('cron flush: sent ' . $res['sent'] . ' spooled event(s), ' . $res['left'] . ' left' .
                        ($res['error'] !== null ? '; NATS error: ' . $res['error'] : ''));
                }
                self::$last = $res;
                return $res;
            } catch (Throwable $e) {
                self::log('AfterCronJob flush failed: ' . get_class($e) . ': ' . $e->getMessage());
                return null;
            }
        }

        // ---------------------------------------------------------------
        // publishing

        private static function subject(string $instance, string $type): string
        {
            return 'whmcs.' . $instance . '.' . $type;
        }

        public static function now(): string
        {
            $d = new DateTime('now', new DateTimeZone('UTC'));
            return $d->format('Y-m-d\TH:i:s.u\Z');
        }

        private static function downMarker(array $cfg): string
        {
            return rtrim($cfg['spool_dir'], '/') . '/.nats-down';
        }

        private static function backoffActive(array $cfg): bool
        {
            if ($cfg['down_backoff'] <= 0) {
                return false;
            }
            $mt = @filemtime(self::downMarker($cfg));
            return $mt !== false && (time() - $mt) < $cfg['down_backoff'];
        }

        private static function markDown(array $cfg): void
        {
            self::$downThisRequest = true;
            if ($cfg['down_backoff'] > 0 && is_dir($cfg['spool_dir'])) {
                @touch(self::downMarker($cfg));
            }
        }

        private static function clearDown(array $cfg): void
        {
            $m = self::downMarker($cfg);
            if (@file_exists($m)) {
                @unlink($m);
            }
        }

        /**
         * Publishes [type, id, data] events in order over one connection,
         * spooling whatever cannot be published before the deadline, then
         * flushes a bounded part of the spool over the same connection.
         */
        public static function publish(array $events, array $cfg): void
        {
            $start = microtime(true);
            $deadline = $start + $cfg['timeout'];
            $stats = array('published' => 0, 'duplicates' => 0, 'spooled' => 0, 'flushed' => 0, 'error' => null);
            $pending = array();
            foreach ($events as $ev) {
                list($type, $id, $data) = $ev;
                if (isset(self::$done[$id])) {
                    continue; // this request already sent it (a double-fired hook)
                }
                $env = array(
                    'id' => $id,
                    'type' => $type,
                    'spec_version' => self::SPEC_VERSION,
                    'occurred_at' => self::now(),
                    'source' => $cfg['instance'],
                    'data' => $data,
                );
                $json = json_encode($env, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE);
                if (!is_string($json)) {
                    self::log('cannot encode event ' . $id . ': ' . json_last_error_msg());
                    continue;
                }
                self::$done[$id] = true;
                $pending[] = array(self::subject($cfg['instance'], $type), $id, $json, $type);
            }
            if (count($pending) === 0) {
                return;
            }

            $nats = null;
            $failure = null;
            $tried = false;
            if (self::$downThisRequest) {
                $failure = 'NATS failed earlier in this request';
            } elseif (self::backoffActive($cfg)) {
                $failure = 'NATS failed less than ' . $cfg['down_backoff'] . ' s ago (down_backoff)';
            } else {
                $tried = true;
                try {
                    $nats = HookworkerNats::connectAny($cfg, $deadline);
                } catch (Throwable $e) {
                    $failure = $e->getMessage();
                }
            }
            foreach ($pending as $p) {
                if ($failure === null && $nats !== null) {
                    try {
                        $ack = $nats->publish($p[0], $p[1], $p[2], $deadline);
                        $stats['published']++;
                        if (!empty($ack['duplicate'])) {
                            $stats['duplicates']++;
                        }
                        if ($cfg['log_published']) {
                            self::log('published ' . $p[1] . ' to ' . $ack['stream'] . ' seq ' . $ack['seq'] . (!empty($ack['duplicate']) ? ' (duplicate)' : ''));
                        }
                        continue;
                    } catch (HookworkerError $e) {
                        if ($e->permanent) {
                            self::rejectEvent($cfg, $p, $e->getMessage());
                            continue;
                        }
                        $failure = $e->getMessage();
                    } catch (Throwable $e) {
                        $failure = $e->getMessage();
                    }
                }
                self::spoolEvent($cfg, $p, (string) $failure);
                $stats['spooled']++;
            }
            if ($failure === null && $nats !== null) {
                self::clearDown($cfg);
                if ($cfg['flush_per_request'] > 0) {
                    $stats['flushed'] = self::flushOver($nats, $cfg, $deadline);
                }
            } elseif ($tried) {
                // Only a real attempt (re)starts the down_backoff window.
                self::markDown($cfg);
            } else {
                self::$downThisRequest = true;
            }
            if ($nats !== null) {
                $nats->close();
            }
            $stats['error'] = $failure;
            $stats['seconds'] = microtime(true) - $start;
            self::$last = $stats;
        }

        private static function spoolEvent(array $cfg, array $p, string $why): void
        {
            try {
                $spool = new HookworkerSpool($cfg['spool_dir']);
                $name = $spool->put($p[3], $p[2]);
                self::log('NATS publish failed (' . $why . '); event ' . $p[1] . ' spooled as ' . $spool->dir() . '/' . $name);
            } catch (Throwable $e) {
                // Last resort: the event goes to the PHP error log so that it
                // can be recovered by hand.
                self::log('EVENT NOT DELIVERED: ' . $p[1] . ' could not be spooled (' . $e->getMessage() . ') after NATS failed (' . $why . '); the event is in the PHP error log');
                error_log('hookworker: undelivered event for ' . $p[0] . ': ' . $p[2]);
            }
        }

        /**
         * An event NATS can never accept (e.g. over max_payload) goes
         * straight to the spool's corrupt/ directory and is reported.
         */
        private static function rejectEvent(array $cfg, array $p, string $why): void
        {
            try {
                $spool = new HookworkerSpool($cfg['spool_dir']);
                $dest = $spool->moveAside($spool->put($p[3], $p[2]), 'rejected: ' . $why);
                self::log('event ' . $p[1] . ' rejected (' . $why . '); moved to ' . $dest);
            } catch (Throwable $e) {
                self::log('EVENT NOT DELIVERED: ' . $p[1] . ' rejected (' . $why . ') and could not be kept: ' . $e->getMessage() . '; the event is in the PHP error log');
                error_log('hookworker: undelivered event for ' . $p[0] . ': ' . $p[2]);
            }
        }

        /** Sends part of the spool over an open connection; returns how many. */
        private static function flushOver(HookworkerNats $nats, array $cfg, float $deadline): int
        {
            $spool = new HookworkerSpool($cfg['spool_dir']);
            if (!is_dir($spool->dir())) {
                return 0;
            }
            $res = $spool->flush(function ($subject, $id, $raw) use ($nats, $deadline) {
                $nats->publish($subject, $id, $raw, $deadline);
            }, function ($m) {
                Hookworker::log($m);
            }, $cfg['flush_per_request'], $deadline, 0.0);
            if ($res['sent'] > 0) {
                self::log('sent ' . $res['sent'] . ' spooled event(s); ' . $res['left'] . ' left' .
                    ($res['error'] !== null ? ' (' . $res['error'] . ')' : ''));
            }
            return $res['sent'];
        }

        // ---------------------------------------------------------------
        // event builders: each returns a list of [type, id, data]

        public static function build(string $hook, array $vars, array $cfg): array
        {
            switch ($hook) {
                case 'ClientAdd':
                    return self::clientAdded($vars, $cfg);
                case 'AcceptOrder':
                    return self::orderAccepted($vars, $cfg);
                case 'InvoicePaid':
                    return self::invoicePaid($vars, $cfg);
                case 'AfterModuleSuspend':
                case 'AfterModuleUnsuspend':
                case 'AfterModuleTerminate':
                case 'AfterModuleChangePassword':
                case 'AfterModuleChangePackage':
                    return self::serviceEvent($hook, $vars, $cfg);
            }
            return array();
        }

        private static function eventId(array $cfg, string $hook, array $parts): string
        {
            return 'whmcs:' . $cfg['instance'] . ':' . $hook . ':' . implode(':', $parts);
        }

        /** First key of $keys whose value is a positive integer. */
        private static function posInt(array $a, array $keys): int
        {
            foreach ($keys as $k) {
                if (isset($a[$k]) && is_scalar($a[$k]) && (int) $a[$k] > 0) {
                    return (int) $a[$k];
                }
            }
            return 0;
        }

        private static function str(array $a, array $keys): string
        {
            foreach ($keys as $k) {
                if (isset($a[$k]) && is_scalar($a[$k]) && trim((string) $a[$k]) !== '') {
                    return trim((string) $a[$k]);
                }
            }
            return '';
        }

        /** Items of a localAPI list such as ['products' => ['product' => [...]]]. */
        private static function listOf($r, string $outer, string $inner): array
        {
            if (!is_array($r) || !isset($r[$outer]) || !is_array($r[$outer]) || !isset($r[$outer][$inner]) || !is_array($r[$outer][$inner])) {
                return array();
            }
            $l = $r[$outer][$inner];
            if (isset($l['id'])) {
                $l = array($l); // a single entry not wrapped in a list
            }
            return array_values(array_filter($l, 'is_array'));
        }

        private static function api(string $cmd, array $args, array $cfg): array
        {
            $key = $cmd . ':' . json_encode($args);
            if (isset(self::$cache[$key])) {
                return self::$cache[$key];
            }
            if (!function_exists('localAPI')) {
                throw new RuntimeException('localAPI is not available');
            }
            $r = $cfg['api_admin'] !== '' ? localAPI($cmd, $args, $cfg['api_admin']) : localAPI($cmd, $args);
            if (!is_array($r) || !isset($r['result']) || $r['result'] !== 'success') {
                $msg = is_array($r) && isset($r['message']) && is_scalar($r['message']) ? (string) $r['message'] : 'no result';
                throw new RuntimeException($cmd . ' failed: ' . $msg);
            }
            self::$cache[$key] = $r;
            return $r;
        }

        /** Maps WHMCS client fields to the event's client object (never the password). */
        private static function clientFrom(array $a, int $id): array
        {
            $c = array(
                'id' => $id,
                'firstname' => self::str($a, array('firstname')),
                'lastname' => self::str($a, array('lastname')),
                'email' => self::str($a, array('email')),
            );
            $optional = array(
                'companyname' => array('companyname'),
                'address1' => array('address1'),
                'address2' => array('address2'),
                'city' => array('city'),
                'state' => array('state', 'fullstate'),
                'postcode' => array('postcode'),
                'country' => array('countrycode', 'country'),
                'phonenumber' => array('phonenumber', 'telephoneNumber'),
                // WHMCS's calling code of phonenumber (lib/Client.php formatPhoneNumber)
                'phonecc' => array('phonecc'),
                'language' => array('language'),
            );
            foreach ($optional as $field => $keys) {
                $v = self::str($a, $keys);
                if ($v !== '') {
                    $c[$field] = $v;
                }
            }
            return $c;
        }

        private static function clientDetails(int $clientId, array $cfg): array
        {
            $r = self::api('GetClientsDetails', array('clientid' => $clientId, 'stats' => false), $cfg);
            $a = isset($r['client']) && is_array($r['client']) ? array_merge($r, $r['client']) : $r;
            return self::clientFrom($a, $clientId);
        }

        private static function service(int $serviceId, array $cfg): ?array
        {
            $r = self::api('GetClientsProducts', array('serviceid' => $serviceId), $cfg);
            foreach (self::listOf($r, 'products', 'product') as $p) {
                if ((int) $p['id'] === $serviceId) {
                    return $p;
                }
            }
            return null;
        }

        /**
         * The key half of a WHMCS "key|Label" name, trimmed; the whole name
         * when it has no "|" after its first character. This is how WHMCS
         * builds module params (lib/Module/Server.php buildServiceParams in
         * 7.8 and 8.7: strpos($name, "|") then trim(explode(...)[0])), so a
         * provider sees the same names here as a module would.
         */
        public static function keyHalf(string $name): string
        {
            $p = strpos($name, '|');
            return ($p !== false && $p > 0) ? trim(substr($name, 0, $p)) : trim($name);
        }

        /**
         * A service's configurable options keyed as module params key them:
         * the part of the option's name before "|", with the key half of the
         * chosen sub-option (dropdown, radio) or the quantity (yes/no,
         * quantity). GetClientsProducts cannot give that: it returns the
         * label half as "option" and the label of the chosen sub-option as
         * "value" (includes/api/getclientsproducts.php via
         * getCartConfigOptions, 7.8 and 8.7), so the options are read from
         * the same tables WHMCS's buildServiceParams reads. Without database
         * access (never inside WHMCS) the GetClientsProducts names are used
         * and a line is logged that they may be labels.
         */
        private static function configOptionsOf(array $product, int $serviceId, int $pid): array
        {
            $db = self::configOptionsFromDb($serviceId, $pid);
            if ($db !== null) {
                return $db;
            }
            $out = array();
            if (isset($product['configoptions']) && is_array($product['configoptions']) &&
                isset($product['configoptions']['configoption']) && is_array($product['configoptions']['configoption'])) {
                foreach ($product['configoptions']['configoption'] as $o) {
                    if (is_array($o) && isset($o['option']) && is_scalar($o['option']) && isset($o['value']) && is_scalar($o['value'])) {
                        $out[self::keyHalf((string) $o['option'])] = self::keyHalf((string) $o['value']);
                    }
                }
            }
            if (count($out) > 0) {
                self::log('service ' . $serviceId . ': no database access; configurable options named as GetClientsProducts returns them (labels, not the keys before "|")');
            }
            return $out;
        }

        /** null when the database cannot be read. */
        private static function configOptionsFromDb(int $serviceId, int $pid): ?array
        {
            $capsule = '\\WHMCS\\Database\\Capsule';
            if ($serviceId <= 0 || !class_exists($capsule)) {
                return null;
            }
            try {
                $out = array();
                foreach ($capsule::table('tblhostingconfigoptions')->where('relid', $serviceId)->get() as $row) {
                    $opt = $capsule::table('tblproductconfigoptions')->where('id', $row->configid)->first();
                    if ($opt === null) {
                        continue;
                    }
                    // only option groups linked to the service's product, as WHMCS does
                    if ($pid > 0 && $capsule::table('tblproductconfiglinks')->where('gid', $opt->gid)->where('pid', $pid)->first() === null) {
                        continue;
                    }
                    $type = (int) $opt->optiontype;
                    if ($type === 3 || $type === 4) {
                        $value = (string) (int) $row->qty;
                    } else {
                        $sub = $capsule::table('tblproductconfigoptionssub')->where('id', $row->optionid)->first();
                        if ($sub === null) {
                            continue;
                        }
                        $value = self::keyHalf((string) $sub->optionname);
                    }
                    $out[self::keyHalf((string) $opt->optionname)] = $value;
                }
                return $out;
            } catch (Throwable $e) {
                self::log('service ' . $serviceId . ': reading configurable options from the database failed: ' . $e->getMessage());
                return null;
            }
        }

        /**
         * The product custom field "Username" (key half of its name) of a
         * service, "" when unset: the official Comet module names the
         * account after it. Read from the database when possible (custom
         * field names, like option names, may be "key|Label"), else from
         * GetClientsProducts' customfields.
         */
        private static function customUsernameOf(array $product, int $serviceId, int $pid): string
        {
            $capsule = '\\WHMCS\\Database\\Capsule';
            if ($serviceId > 0 && $pid > 0 && class_exists($capsule)) {
                try {
                    foreach ($capsule::table('tblcustomfields')->where('type', 'product')->where('relid', $pid)->get() as $f) {
                        if (self::keyHalf((string) $f->fieldname) !== 'Username') {
                            continue;
                        }
                        $v = $capsule::table('tblcustomfieldsvalues')->where('fieldid', $f->id)->where('relid', $serviceId)->first();
                        return $v !== null ? self::keyHalf((string) $v->value) : '';
                    }
                    return '';
                } catch (Throwable $e) {
                    self::log('service ' . $serviceId . ': reading custom fields from the database failed: ' . $e->getMessage());
                }
            }
            foreach (self::listOf(isset($product['customfields']) ? array('c' => $product['customfields']) : array(), 'c', 'customfield') as $f) {
                if (isset($f['name']) && is_scalar($f['name']) && self::keyHalf((string) $f['name']) === 'Username') {
                    return isset($f['value']) && is_scalar($f['value']) ? self::keyHalf((string) $f['value']) : '';
                }
            }
            return '';
        }

        /** Adds config_options, username and custom_username of service $p to $s. */
        private static function serviceFields(array $s, array $p): array
        {
            $sid = (int) $p['id'];
            $pid = self::posInt($p, array('pid', 'productid'));
            $opts = self::configOptionsOf($p, $sid, $pid);
            if (count($opts) > 0) {
                $s['config_options'] = (object) $opts;
            }
            $user = self::str($p, array('username'));
            if ($user !== '') {
                $s['username'] = $user;
            }
            $cu = self::customUsernameOf($p, $sid, $pid);
            if ($cu !== '') {
                $s['custom_username'] = $cu;
            }
            return $s;
        }

        /** client.added from ClientAdd (key names differ between 7.x and 8.x). */
        private static function clientAdded(array $vars, array $cfg): array
        {
            // 8.x: client_id (user_id is the login user, not the client); 7.x: userid.
            $cid = self::posInt($vars, array('client_id', 'userid', 'clientid'));
            if ($cid <= 0) {
                self::log('ClientAdd without a client id; nothing published');
                return array();
            }
            $client = self::clientFrom($vars, $cid);
            $noCallingCode = isset($client['phonenumber']) && !isset($client['phonecc']) && substr($client['phonenumber'], 0, 1) !== '+';
            if ($client['email'] === '') {
                $client = self::clientDetails($cid, $cfg);
            } elseif ($noCallingCode) {
                // GetClientsDetails has WHMCS's own phonecc for the number
                try {
                    $client = self::clientDetails($cid, $cfg);
                } catch (Throwable $e) {
                    self::log('ClientAdd ' . $cid . ': no calling code for the phone number (GetClientsDetails failed: ' . $e->getMessage() . ')');
                }
            }
            $data = array('client' => $client);
            $allow = $cfg['client_custom_fields'];
            $cf = isset($vars['customFields']) ? $vars['customFields'] : (isset($vars['customfields']) ? $vars['customfields'] : null);
            if (count($allow) > 0 && is_array($cf)) {
                $sel = array();
                foreach ($cf as $k => $v) {
                    if (in_array((string) $k, $allow, true) && is_scalar($v)) {
                        $sel[(string) $k] = (string) $v;
                    }
                }
                if (count($sel) > 0) {
                    $data['custom_fields'] = (object) $sel;
                }
            }
            return array(array('client.added', self::eventId($cfg, 'ClientAdd', array($cid)), $data));
        }

        /** order.accepted from AcceptOrder: one entry per ordered service. */
        private static function orderAccepted(array $vars, array $cfg): array
        {
            $oid = self::posInt($vars, array('orderid', 'orderId', 'OrderID'));
            if ($oid <= 0) {
                self::log('AcceptOrder without an order id; nothing published');
                return array();
            }
            $orders = self::listOf(self::api('GetOrders', array('id' => $oid), $cfg), 'orders', 'order');
            if (count($orders) === 0) {
                throw new RuntimeException('GetOrders found no order ' . $oid);
            }
            $o = $orders[0];
            $cid = self::posInt($o, array('userid', 'clientid'));
            $serviceIds = array();
            $hasLines = isset($o['lineitems']) && is_array($o['lineitems']);
            foreach (self::listOf($o, 'lineitems', 'lineitem') as $li) {
                if (strtolower(self::str($li, array('type'))) === 'product' && self::posInt($li, array('relid')) > 0) {
                    $serviceIds[] = self::posInt($li, array('relid'));
                }
            }
            $products = array();
            if ($hasLines) {
                foreach (array_unique($serviceIds) as $sid) {
                    $p = self::service($sid, $cfg);
                    if ($p !== null) {
                        $products[] = $p;
                    }
                }
            } else {
                $r = self::api('GetClientsProducts', array('clientid' => $cid, 'limitnum' => 1000), $cfg);
                foreach (self::listOf($r, 'products', 'product') as $p) {
                    if ((int) (isset($p['orderid']) ? $p['orderid'] : 0) === $oid) {
                        $products[] = $p;
                    }
                }
            }
            $services = array();
            foreach ($products as $p) {
                if (self::moduleManaged(self::posInt($p, array('pid', 'productid')))) {
                    continue; // the hookworker module's CreateAccount publishes this service's signup
                }
                $s = array(
                    'service_id' => (int) $p['id'],
                    'product_id' => self::posInt($p, array('pid', 'productid')),
                );
                $domain = self::str($p, array('domain'));
                if ($domain !== '') {
                    $s['domain'] = $domain;
                }
                $cycle = self::str($p, array('billingcycle'));
                if ($cycle !== '') {
                    $s['billing_cycle'] = $cycle;
                }
                $services[] = self::serviceFields($s, $p);
            }
            $data = array('order_id' => $oid);
            $inv = self::posInt($o, array('invoiceid'));
            if ($inv > 0) {
                $data['invoice_id'] = $inv;
            }
            $data['client'] = self::clientDetails($cid, $cfg);
            $data['services'] = $services;
            return array(array('order.accepted', self::eventId($cfg, 'AcceptOrder', array($oid)), $data));
        }

        public static function monthsOf(string $cycle): int
        {
            $c = strtolower(str_replace(' ', '', trim($cycle)));
            $m = array('monthly' => 1, 'quarterly' => 3, 'semi-annually' => 6, 'semiannually' => 6,
                'annually' => 12, 'biennially' => 24, 'triennially' => 36);
            return isset($m[$c]) ? $m[$c] : 0;
        }

        private static function orderInvoiceId(int $orderId, array $cfg): int
        {
            if ($orderId <= 0) {
                return 0;
            }
            try {
                $orders = self::listOf(self::api('GetOrders', array('id' => $orderId), $cfg), 'orders', 'order');
            } catch (Throwable $e) {
                return 0;
            }
            return count($orders) > 0 ? self::posInt($orders[0], array('invoiceid')) : 0;
        }

        /**
         * Whether an invoice item of $type/$relid exists on an older invoice.
         * null when it cannot be known (no database access).
         */
        private static function olderItemExists(string $type, int $relid, int $invoiceId): ?bool
        {
            $capsule = '\\WHMCS\\Database\\Capsule';
            if (!class_exists($capsule)) {
                return null;
            }
            $row = $capsule::table('tblinvoiceitems')->where('type', $type)->where('relid', $relid)
                ->where('invoiceid', '<', $invoiceId)->first();
            return $row !== null;
        }

        /**
         * WHMCS's own rule (Invoice::shouldRenewRun): a Hosting/Addon item is
         * a renewal when its order's invoice exists and is not this invoice;
         * otherwise when an older invoice carries an item for the same
         * type+relid, or when this invoice's due date is not the
         * registration date.
         */
        public static function isRenewal(int $orderInvoice, int $invoiceId, ?bool $olderItem, string $dueDate, string $regDate): bool
        {
            if ($orderInvoice > 0 && $orderInvoice !== $invoiceId) {
                return true;
            }
            if ($olderItem === true) {
                return true;
            }
            return $dueDate !== '' && $regDate !== '' && substr($dueDate, 0, 10) !== substr($regDate, 0, 10);
        }

        private static function addon(int $clientId, int $hostingAddonId, array $cfg): ?array
        {
            $r = self::api('GetClientsAddons', array('clientid' => $clientId), $cfg);
            foreach (self::listOf($r, 'addons', 'addon') as $a) {
                if ((int) $a['id'] === $hostingAddonId) {
                    return $a;
                }
            }
            return null;
        }

        /** invoice.paid plus one service.renewal_paid per renewed Hosting/Addon item. */
        private static function invoicePaid(array $vars, array $cfg): array
        {
            $iid = self::posInt($vars, array('invoiceid', 'invoiceId'));
            if ($iid <= 0) {
                self::log('InvoicePaid without an invoice id; nothing published');
                return array();
            }
            $inv = self::api('GetInvoice', array('invoiceid' => $iid), $cfg);
            $cid = self::posInt($inv, array('userid', 'clientid'));
            $due = self::str($inv, array('duedate'));
            $items = array();
            $renewals = array();
            foreach (self::listOf($inv, 'items', 'item') as $it) {
                $svc = null;
                $type = self::str($it, array('type'));
                $relid = self::posInt($it, array('relid'));
                $item = array('id' => self::posInt($it, array('id')), 'type' => $type !== '' ? $type : 'Item', 'rel_id' => $relid);
                $renewal = false;
                if ($type === 'Domain') {
                    $renewal = true; // WHMCS writes domain renewals as type "Domain"
                } elseif (($type === 'Hosting' || $type === 'Addon') && $relid > 0) {
                    try {
                        if ($type === 'Hosting') {
                            $svc = self::service($relid, $cfg);
                            $pid = $svc !== null ? self::posInt($svc, array('pid', 'productid')) : 0;
                        } else {
                            $svc = self::addon($cid, $relid, $cfg);
                            $pid = $svc !== null ? self::posInt($svc, array('addonid')) : 0;
                        }
                    } catch (Throwable $e) {
                        self::log('InvoicePaid ' . $iid . ': lookup of ' . $type . ' ' . $relid . ' failed: ' . $e->getMessage());
                        $svc = null;
                        $pid = 0;
                    }
                    if ($pid > 0) {
                        $item['product_id'] = $pid;
                    }
                    $managed = $type === 'Hosting' && self::moduleManaged($pid);
                    if ($managed) {
                        $item['module'] = self::MODULE; // its CreateAccount / Renew publish the signup and renewal
                    }
                    if ($svc !== null && $type === 'Hosting') {
                        // a signup on first payment needs them (e.g. CodeGuard: the domain and the term)
                        $itemDomain = self::str($svc, array('domain'));
                        if ($itemDomain !== '') {
                            $item['domain'] = $itemDomain;
                        }
                        $itemCycle = self::str($svc, array('billingcycle'));
                        if ($itemCycle !== '') {
                            $item['billing_cycle'] = $itemCycle;
                        }
                    }
                    if ($svc !== null) {
                        $orderInv = self::orderInvoiceId(self::posInt($svc, array('orderid')), $cfg);
                        $older = null;
                        if (!($orderInv > 0 && $orderInv !== $iid)) {
                            try {
                                $older = self::olderItemExists($type, $relid, $iid);
                            } catch (Throwable $e) {
                                $older = null;
                            }
                        }
                        $renewal = self::isRenewal($orderInv, $iid, $older, $due, self::str($svc, array('regdate')));
                        if ($renewal) {
                            $cycle = self::str($svc, array('billingcycle'));
                            $months = self::monthsOf($cycle);
                            if ($type === 'Addon' && !$cfg['addon_renewals']) {
                                // addon_renewals off: only the invoice.paid item says it
                            } elseif ($managed) {
                                // the hookworker module's Renew publishes service.renewal_paid
                            } elseif ($months <= 0 || $pid <= 0) {
                                self::log('InvoicePaid ' . $iid . ': ' . $type . ' ' . $relid . ' renewed with billing cycle "' . $cycle . '" and product ' . $pid . '; no service.renewal_paid published');
                            } else {
                                $r = array(
                                    'service_id' => $relid,
                                    'product_id' => $pid,
                                    'client_id' => $cid,
                                    'invoice_id' => $iid,
                                    'months' => $months,
                                );
                                $domain = self::str($svc, array('domain'));
                                if ($domain !== '') {
                                    $r['domain'] = $domain;
                                }
                                $r['billing_cycle'] = $cycle;
                                $r['item_type'] = $type;
                                if ($type === 'Addon') {
                                    $r['parent_service_id'] = self::posInt($svc, array('serviceid', 'hostingid'));
                                    $key = 'addon-' . $relid;
                                } else {
                                    $key = (string) $relid;
                                }
                                $renewals[] = array('service.renewal_paid', self::eventId($cfg, 'RenewalPaid', array($iid, $key)), $r);
                            }
                        }
                    }
                }
                $desc = self::str($it, array('description'));
                if ($desc !== '') {
                    $item['description'] = $desc;
                }
                if (isset($it['amount']) && is_scalar($it['amount'])) {
                    $item['amount'] = (string) $it['amount'];
                }
                $item['renewal'] = $renewal;
                if (!$renewal && $type === 'Hosting' && $svc !== null) {
                    // a signup on first payment applies the same options and names as AcceptOrder's
                    try {
                        $item = self::serviceFields($item, $svc);
                    } catch (Throwable $e) {
                        self::log('InvoicePaid ' . $iid . ': options of Hosting ' . $relid . ' unreadable: ' . $e->getMessage());
                    }
                }
                $items[] = $item;
            }
            $data = array('invoice_id' => $iid, 'client_id' => $cid);
            if ($cid > 0) {
                try {
                    $data['client'] = self::clientDetails($cid, $cfg);
                } catch (Throwable $e) {
                    // optional field: publish without it
                }
            }
            $data['items'] = $items;
            $out = array(array('invoice.paid', self::eventId($cfg, 'InvoicePaid', array($iid)), $data));
            return array_merge($out, $renewals);
        }

        /**
         * service.* from AfterModule* hooks. Only named fields are read from
         * $vars['params'] (it holds password, serverpassword and
         * serveraccesshash); the id carries the request id so that a hook
         * double-firing within one request de-duplicates while a later,
         * genuine action gets a new id.
         */
        private static function serviceEvent(string $hook, array $vars, array $cfg): array
        {
            if (array_key_exists('functionSuccessful', $vars) && !$vars['functionSuccessful']) {
                return array(); // Service::moduleCall path: the module call failed
            }
            $p = isset($vars['params']) && is_array($vars['params']) ? $vars['params'] : array();
            if (isset($p['moduletype']) && $p['moduletype'] === self::MODULE) {
                return array(); // the hookworker module published this action itself: one source per action
            }
            $sid = self::posInt($p, array('serviceid', 'accountid'));
            if ($sid <= 0) {
                $sid = self::posInt($vars, array('serviceid', 'serviceId', 'accountid'));
            }
            if ($sid <= 0) {
                self::log($hook . ' without a service id; nothing published');
                return array();
            }
            $cd = isset($p['clientsdetails']) && is_array($p['clientsdetails']) ? $p['clientsdetails'] : array();
            $pid = self::posInt($p, array('pid', 'packageid'));
            $cid = self::posInt($p, array('userid', 'clientid'));
            if ($cid <= 0) {
                $cid = self::posInt($cd, array('userid', 'client_id', 'id'));
            }
            $domain = self::str($p, array('domain'));
            $username = self::str($p, array('username'));
            $svc = null;
            if ($pid <= 0 || $cid <= 0) {
                // e.g. AfterModuleChangePassword from clientarea.php: {serviceid, oldpassword, newpassword}
                $svc = self::service($sid, $cfg);
                if ($svc === null) {
                    throw new RuntimeException('service ' . $sid . ' not found');
                }
                $pid = $pid > 0 ? $pid : self::posInt($svc, array('pid', 'productid'));
                $cid = $cid > 0 ? $cid : self::posInt($svc, array('clientid', 'userid'));
                $domain = $domain !== '' ? $domain : self::str($svc, array('domain'));
                $username = $username !== '' ? $username : self::str($svc, array('username'));
            }
            if (self::moduleManaged($pid)) {
                return array(); // e.g. a client-area password change of a hookworker-module service: the module published it
            }
            $data = array('service_id' => $sid, 'product_id' => $pid, 'client_id' => $cid);
            if ($domain !== '') {
                $data['domain'] = $domain;
            }
            if ($username !== '') {
                $data['username'] = $username;
            }
            if ($hook === 'AfterModuleSuspend') {
                $reason = self::str($p, array('suspendreason'));
                if ($reason === '') {
                    $reason = self::str($vars, array('suspendreason', 'reason'));
                }
                if ($reason !== '') {
                    $data['reason'] = $reason;
                }
            }
            if ($hook === 'AfterModuleChangePackage') {
                // module params carry no billing cycle; a plan change at the provider needs the term
                try {
                    $svc = $svc !== null ? $svc : self::service($sid, $cfg);
                    $cycle = $svc !== null ? self::str($svc, array('billingcycle')) : '';
                    if ($cycle !== '') {
                        $data['billing_cycle'] = $cycle;
                    }
                } catch (Throwable $e) {
                    self::log($hook . ' service ' . $sid . ': billing cycle lookup failed: ' . $e->getMessage());
                }
            }
            if ($hook === 'AfterModuleChangePackage' && isset($p['configoptions']) && is_array($p['configoptions'])) {
                $opts = array();
                foreach ($p['configoptions'] as $k => $v) {
                    if (is_scalar($v)) {
                        $opts[(string) $k] = (string) $v;
                    }
                }
                if (count($opts) > 0) {
                    $data['config_options'] = (object) $opts;
                }
            }
            $type = self::HOOKS[$hook];
            return array(array($type, self::eventId($cfg, $hook, array($sid, self::requestId())), $data));
        }

        // ---------------------------------------------------------------
        // the hookworker server module (modules/servers/hookworker): it
        // publishes through publish() above, the same publisher and spool

        /** @var array<int,bool> product id => its module is hookworker */
        private static $managed = array();

        /**
         * Whether product $pid uses the hookworker server module
         * (tblproducts.servertype): then the module's own calls publish its
         * signup, renewals and lifecycle actions, and the hooks publish
         * none of them (one source of truth per action). false without
         * database access.
         */
        public static function moduleManaged(int $pid): bool
        {
            if ($pid <= 0) {
                return false;
            }
            if (isset(self::$managed[$pid])) {
                return self::$managed[$pid];
            }
            $capsule = '\\WHMCS\\Database\\Capsule';
            $is = false;
            if (class_exists($capsule)) {
                try {
                    $row = $capsule::table('tblproducts')->where('id', $pid)->first();
                    $is = $row !== null && isset($row->servertype) && (string) $row->servertype === self::MODULE;
                } catch (Throwable $e) {
                    self::log('product ' . $pid . ': reading its module from the database failed: ' . $e->getMessage());
                }
            }
            self::$managed[$pid] = $is;
            return $is;
        }

        /** Module function => event type. */
        const MODULE_TYPES = array(
            'CreateAccount' => 'order.accepted',
            'Renew' => 'service.renewal_paid',
            'SuspendAccount' => 'service.suspended',
            'UnsuspendAccount' => 'service.unsuspended',
            'TerminateAccount' => 'service.terminated',
            'ChangePassword' => 'service.password_changed',
            'ChangePackage' => 'service.package_changed',
        );

        /**
         * The event of one module lifecycle call, as [type, id, data], with
         * the product's module settings in data (services[0].module for
         * CreateAccount). Ids: CreateAccount ModuleCreate:<service> (one
         * signup per service); Renew ModuleRenew:<invoice>:<service> (one
         * renewal per paid invoice, found in the database); the others
         * Module<Function>:<service>:<request>, so that a retried call in
         * one request de-duplicates while a later genuine action is new.
         * Only named fields of $params are read: never password,
         * serverpassword or serveraccesshash.
         */
        public static function moduleEvent(string $fn, array $params, array $module, array $cfg): array
        {
            if (!isset(self::MODULE_TYPES[$fn])) {
                throw new RuntimeException('module function ' . $fn . ' publishes no event');
            }
            $sid = self::posInt($params, array('serviceid', 'accountid'));
            $pid = self::posInt($params, array('pid', 'packageid'));
            $cd = isset($params['clientsdetails']) && is_array($params['clientsdetails']) ? $params['clientsdetails'] : array();
            $cid = self::posInt($params, array('userid', 'clientid'));
            if ($cid <= 0) {
                $cid = self::posInt($cd, array('userid', 'client_id', 'id'));
            }
            if ($sid <= 0 || $pid <= 0 || $cid <= 0) {
                throw new RuntimeException('module parameters without serviceid, pid or userid');
            }
            $svc = null;
            try {
                $svc = self::service($sid, $cfg);
            } catch (Throwable $e) {
                self::log('service ' . $sid . ': lookup failed: ' . $e->getMessage());
            }
            $domain = self::str($params, array('domain'));
            $username = self::str($params, array('username'));
            $cycle = $svc !== null ? self::str($svc, array('billingcycle')) : '';
            $opts = array();
            if (isset($params['configoptions']) && is_array($params['configoptions'])) {
                foreach ($params['configoptions'] as $k => $v) {
                    if (is_scalar($v)) {
                        $opts[self::keyHalf((string) $k)] = (string) $v; // module params are keyed by the key half already
                    }
                }
            }
            $type = self::MODULE_TYPES[$fn];
            if ($fn === 'CreateAccount') {
                $oid = $svc !== null ? self::posInt($svc, array('orderid')) : 0;
                if ($oid <= 0) {
                    throw new RuntimeException('service ' . $sid . ' has no order (GetClientsProducts orderid); a signup event names its order');
                }
                $s = array('service_id' => $sid, 'product_id' => $pid);
                if ($domain !== '') {
                    $s['domain'] = $domain;
                }
                if ($cycle !== '') {
                    $s['billing_cycle'] = $cycle;
                }
                if ($svc !== null) {
                    $s = self::serviceFields($s, $svc);
                }
                if (count($opts) > 0) {
                    $s['config_options'] = (object) $opts;
                }
                if ($username !== '') {
                    $s['username'] = $username;
                }
                $s['module'] = $module;
                $data = array('order_id' => $oid);
                $inv = self::orderInvoiceId($oid, $cfg);
                if ($inv > 0) {
                    $data['invoice_id'] = $inv;
                }
                $data['client'] = self::clientDetails($cid, $cfg);
                $data['services'] = array($s);
                return array($type, self::eventId($cfg, 'ModuleCreate', array($sid)), $data);
            }
            $data = array('service_id' => $sid, 'product_id' => $pid, 'client_id' => $cid);
            if ($domain !== '') {
                $data['domain'] = $domain;
            }
            if ($fn === 'Renew') {
                $months = self::monthsOf($cycle);
                if ($months <= 0) {
                    throw new RuntimeException('service ' . $sid . ': billing cycle "' . $cycle . '" has no renewal term');
                }
                $iid = self::latestPaidInvoice($sid);
                if ($iid <= 0) {
                    throw new RuntimeException('service ' . $sid . ': no paid invoice for it found; hookworker renews a term against the invoice that paid it');
                }
                $data['invoice_id'] = $iid;
                $data['months'] = $months;
                $data['billing_cycle'] = $cycle;
                $data['item_type'] = 'Hosting';
                $data['module'] = $module;
                return array($type, self::eventId($cfg, 'ModuleRenew', array($iid, $sid)), $data);
            }
            if ($username !== '') {
                $data['username'] = $username;
            }
            if ($fn === 'SuspendAccount') {
                $reason = self::str($params, array('suspendreason'));
                if ($reason !== '') {
                    $data['reason'] = $reason;
                }
            }
            if ($fn === 'ChangePackage') {
                if ($cycle !== '') {
                    $data['billing_cycle'] = $cycle;
                }
                if (count($opts) > 0) {
                    $data['config_options'] = (object) $opts;
                }
            }
            $data['module'] = $module;
            return array($type, self::eventId($cfg, 'Module' . $fn, array($sid, self::requestId())), $data);
        }

        /** The newest paid invoice with a Hosting item for the service; 0 if none (or no database). */
        private static function latestPaidInvoice(int $serviceId): int
        {
            $capsule = '\\WHMCS\\Database\\Capsule';
            if (!class_exists($capsule)) {
                return 0;
            }
            $ids = array();
            foreach ($capsule::table('tblinvoiceitems')->where('type', 'Hosting')->where('relid', $serviceId)->get() as $row) {
                $ids[] = (int) $row->invoiceid;
            }
            rsort($ids);
            foreach (array_unique($ids) as $iid) {
                $inv = $capsule::table('tblinvoices')->where('id', $iid)->first();
                if ($inv !== null && isset($inv->status) && (string) $inv->status === 'Paid') {
                    return $iid;
                }
            }
            return 0;
        }

        /**
         * Asks the worker over NATS request-reply ($subject is one of the
         * hookworker.rpc.* subjects of events/rpc.go) with the hook
         * configuration's servers and credentials, and returns the decoded
         * reply. Everything (connect included) ends by $timeout seconds.
         * Throws HookworkerError with a message for the admin: NATS
         * unreachable, no worker running, no answer in time, or the
         * worker's own error.
         */
        public static function ask(string $subject, array $req, float $timeout): array
        {
            $cfg = self::config();
            if ($cfg === null) {
                throw new HookworkerError('hookworker is not configured (see ' . __DIR__ . '/hookworker/config.php)');
            }
            $start = microtime(true);
            $deadline = $start + $timeout;
            $req['source'] = $cfg['instance'];
            try {
                $nats = HookworkerNats::connectAny($cfg, $deadline);
            } catch (HookworkerError $e) {
                throw new HookworkerError('NATS unreachable (' . implode(', ', array_map(array('HookworkerNats', 'redact'), $cfg['servers'])) . '): ' . $e->getMessage());
            }
            try {
                // leave the worker time to answer before our deadline
                $req['timeout_ms'] = max(100, (int) (($deadline - microtime(true)) * 800));
                $json = json_encode($req, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
                $rep = $nats->requestReply($subject, (string) $json, $deadline);
            } catch (HookworkerError $e) {
                $m = $e->getMessage();
                if (strpos($m, 'no responders') === 0) {
                    throw new HookworkerError('no hookworker worker is running (nobody answers ' . $subject . ' on this NATS)');
                }
                if (strpos($m, 'timeout') === 0) {
                    throw new HookworkerError('no hookworker worker answered ' . $subject . ' within ' . round($timeout, 1) . ' s');
                }
                throw $e;
            } finally {
                $nats->close();
            }
            if (isset($rep['error']) && is_string($rep['error']) && $rep['error'] !== '') {
                throw new HookworkerError('worker ' . (isset($rep['worker']) ? $rep['worker'] : '?') . ': ' . $rep['error']);
            }
            return $rep;
        }
    }

    Hookworker::register();
}
