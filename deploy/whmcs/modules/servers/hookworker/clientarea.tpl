{* hookworker client area: set by hookworker_ClientArea *}
<div class="alert {if $hookworker_state eq 'ok'}alert-success{elseif $hookworker_state eq 'failed'}alert-danger{else}alert-info{/if}">
    {$hookworker_message|escape}
    {if $hookworker_account}<br>Account: <strong>{$hookworker_account|escape}</strong>{/if}
</div>
