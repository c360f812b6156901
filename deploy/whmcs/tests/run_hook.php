<?php
// Fires WHMCS hooks through the stub, all inside one PHP "request":
//   php run_hook.php <Hook> '<vars json>' [<Hook> '<vars json>' ...]
// Prints one JSON document: per-call timings and publish statistics, the
// activity log, PHP errors raised and any output the hooks leaked.

require __DIR__ . '/bootstrap.php';

run_calls(array_slice($argv, 1), 'run_hook.php <Hook> <vars-json> ...', 'hook', function ($hook, $vars) {
    run_hook($hook, $vars);
    return array();
});
