
#compdef mcn

_mcn_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _MCN_COMPLETE=complete_zsh mcn)
}

compdef _mcn_completion mcn
