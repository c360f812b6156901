<?php
// The WHMCS stand-in the test runners (run_hook.php, run_module.php) start
// from: every PHP error collected (not printed) in $GLOBALS['run_errors'],
// the stub (whmcs_stub.php, which loads ../hookworker.php), an empty module
// log, and run_calls, which makes their calls and prints the report the Go
// tests in deploy/whmcs read.

error_reporting(E_ALL);
ini_set('display_errors', '1');
$GLOBALS['run_errors'] = array();
$GLOBALS['stub_module_log'] = array();
set_error_handler(function ($no, $str, $file, $line) {
    if (!(error_reporting() & $no)) {
        return false; // suppressed with @
    }
    $GLOBALS['run_errors'][] = $str . ' at ' . basename($file) . ':' . $line;
    return true;
});

require __DIR__ . '/whmcs_stub.php';

/**
 * Makes every call the arguments name, all inside this one PHP "request",
 * and prints one JSON document.
 *
 * $args are <name> '<json>' pairs; a pair's JSON is decoded to an array
 * (an empty one when it is not a JSON object or array) and passed with
 * its name to $call, which returns the fields of the call's entry in the
 * report besides its name and timing. An odd number of arguments prints
 * "usage: $usage" to stderr and exits 2.
 *
 * The document holds request_id, calls (per call: the name under $nameKey,
 * seconds, $call's fields, and the publish statistics Hookworker::$last),
 * activity, the globals $extra names (report key => $GLOBALS key), errors
 * (PHP errors raised) and output (anything printed: none is allowed).
 */
function run_calls(array $args, $usage, $nameKey, callable $call, array $extra = array())
{
    if (count($args) % 2 !== 0) {
        fwrite(STDERR, "usage: $usage\n");
        exit(2);
    }
    $calls = array();
    ob_start();
    for ($i = 0; $i < count($args); $i += 2) {
        $input = json_decode($args[$i + 1], true);
        if (!is_array($input)) {
            $input = array();
        }
        Hookworker::$last = null;
        $t = hrtime(true);
        $fields = $call($args[$i], $input);
        $calls[] = array_merge(array($nameKey => $args[$i], 'seconds' => (hrtime(true) - $t) / 1e9), $fields, array('last' => Hookworker::$last));
    }
    $leaked = ob_get_clean();
    $report = array(
        'request_id' => Hookworker::requestId(),
        'calls' => $calls,
        'activity' => $GLOBALS['stub_activity'],
    );
    foreach ($extra as $key => $global) {
        $report[$key] = $GLOBALS[$global];
    }
    $report['errors'] = $GLOBALS['run_errors'];
    $report['output'] = $leaked;
    echo json_encode($report, JSON_UNESCAPED_SLASHES), "\n";
}
