/*
 * boot.S: multiboot (v1) header and entry point of the test guest. QEMU's -kernel loader
 * finds the header (first in .text, so inside the first 8 KiB of the file), enters _start
 * in 32-bit protected mode with EAX = magic and EBX = multiboot info; we zero .bss, set up
 * a stack and call guest_main with interrupts disabled for good.
 */
	.set	MULTIBOOT_MAGIC, 0x1BADB002
	.set	MULTIBOOT_FLAGS, 0x00000003	/* page-align modules, want memory info */

	.section .multiboot, "a"
	.align	4
	.long	MULTIBOOT_MAGIC
	.long	MULTIBOOT_FLAGS
	.long	-(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

	.section .text
	.global	_start
	.type	_start, @function
_start:
	cli
	cld
	movl	%eax, %edx			/* keep the multiboot magic */
	movl	$__bss_start, %edi
	movl	$__bss_end, %ecx
	subl	%edi, %ecx
	xorl	%eax, %eax
	rep stosb				/* the stack lives in .bss: zero before use */
	movl	$boot_stack_top, %esp
	pushl	%ebx				/* multiboot info */
	pushl	%edx				/* multiboot magic */
	call	guest_main
1:	cli
	hlt
	jmp	1b

	.section .bss
	.align	16
boot_stack:
	.skip	65536
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
